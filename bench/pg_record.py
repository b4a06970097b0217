"""``PostgresStore.record`` per occurrence: round trips, statements and time, pipelined vs one statement per trip.

    python bench/pg_record.py [--records 2000] [--bugs 20] [--rounds 5]

One real PostgreSQL (``tests/postgres_server.py``, durable defaults: fsync and synchronous_commit
on) on 127.0.0.1, one store per way of recording, each on a database of its own and one pooled
connection. "before" is ``bench/_legacy_pg_record.py`` (a verbatim copy of ``record`` as it was),
"after" is ``PostgresStore.record``. Each round records ``--records`` occurrences (``--bugs``
fingerprints, a version, a fresh trace id, a journal entry cleared with it, as the service does)
with each way in turn, so noise from other work on the machine hits both alike; the times are
medians over rounds of the mean per ``record``.

Round trips and statements come from libpq's own protocol trace of the connection, for
``--traced`` records after the timed rounds: a round trip is the client sending, then waiting for
the server's answer; a statement is a ``Query`` or ``Bind`` message. The pool's check of the
connection when it is handed out (an empty query) is part of both.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _legacy_pg_record import legacy_record  # noqa: E402

from otel_autoheal.model import ExceptionRecord, GroupStats, GroupUpdate, Occurrence  # noqa: E402
from otel_autoheal.state.postgres import PostgresStore  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402

Record = Callable[..., GroupUpdate]


def _occurrence(index: int, bugs: int) -> Occurrence:
    trace_id = secrets.token_hex(16)
    exc = ExceptionRecord(
        type=f"Bench{index % bugs}Error", message="order rejected",
        stacktrace=f'Traceback (most recent call last):\n  File "/srv/app/step_{index % bugs}.py", line 17, in apply\n'
                   f"Bench{index % bugs}Error: order rejected",
        time_unix_nano=time.time_ns(), trace_id=trace_id, span_id=secrets.token_hex(8), origin="span_event",
        resource={"service.name": "shop", "service.version": "1.4.2", "autoheal.source": "bench"},
    )
    return Occurrence(fingerprint=f"bench-{index % bugs}", grouping_fields=[exc.type, "step.py:apply"],
                      title=f"{exc.type}: order rejected", body="", exception=exc)


def _render(stats: GroupStats) -> tuple[str, str]:
    return f"seen {stats.count}", f"count={stats.count} versions={','.join(stats.versions)} prev={stats.title}"


def _prepare(store: PostgresStore, count: int, bugs: int) -> list[Occurrence]:
    """``count`` occurrences, each with a journal entry for ``record`` to clear (as the service does)."""
    occurrences = [_occurrence(i, bugs) for i in range(count)]
    store.journal_add([(o.exception.trace_id, "spans", "{}") for o in occurrences])
    return occurrences


def _record_all(store: PostgresStore, record: Record, occurrences: list[Occurrence]) -> float:
    """Seconds per ``record``."""
    started = time.perf_counter()
    for occurrence in occurrences:
        record(store, occurrence, _render, journal_trace=(occurrence.exception.trace_id, None))
    return (time.perf_counter() - started) / len(occurrences)


def _traced(store: PostgresStore, record: Record, count: int, bugs: int) -> tuple[float, float]:
    """(round trips, statements) per ``record``, from libpq's protocol trace of the one connection."""
    from psycopg import pq

    occurrences = _prepare(store, count, bugs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace"
        with path.open("w") as handle:
            with store._pool.connection() as conn:  # the pool's only connection: every record uses it
                conn.pgconn.trace(handle.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            _record_all(store, record, occurrences)
            with store._pool.connection() as conn:
                conn.pgconn.untrace()
        lines = path.read_text().splitlines()
    trips = statements = 0
    sending = False
    for line in lines:
        fields = line.split("\t")
        if fields[0] == "F":
            trips += not sending
            sending = True
            statements += len(fields) > 2 and fields[2] in ("Query", "Bind")
        elif fields[0] == "B":
            sending = False
    # Less the pool's check when the connection was handed out to switch tracing off.
    return (trips - 1) / count, statements / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="occurrences per way per round (default 2000)")
    parser.add_argument("--bugs", type=int, default=20, help="distinct fingerprints (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--traced", type=int, default=200, help="records traced for round trips (default 200)")
    args = parser.parse_args()
    ways: dict[str, Record] = {"before (one statement per trip)": legacy_record,
                               "after (pipelined)": PostgresStore.record}
    server = PostgresServer(fsync=True)
    stores = {name: PostgresStore(server.new_database(), pool_size=1) for name in ways}
    try:
        times: dict[str, list[float]] = {name: [] for name in ways}
        for name, record in ways.items():  # warm-up: every group exists, caches are hot
            _record_all(stores[name], record, _prepare(stores[name], args.bugs * 5, args.bugs))
        for _ in range(args.rounds):
            for name, record in ways.items():
                occurrences = _prepare(stores[name], args.records, args.bugs)
                times[name].append(_record_all(stores[name], record, occurrences))
        print(f"{args.records} records x {args.rounds} rounds, {args.bugs} fingerprints, PostgreSQL on 127.0.0.1")
        print(f"{'way':34} {'round trips':>11} {'statements':>10} {'ms/record':>9} {'records/s':>9}")
        for name, record in ways.items():
            trips, statements = _traced(stores[name], record, args.traced, args.bugs)
            per = statistics.median(times[name])
            print(f"{name:34} {trips:11.1f} {statements:10.1f} {per * 1000:9.2f} {1 / per:9.0f}")
    finally:
        for store in stores.values():
            store.close()
        server.stop()


if __name__ == "__main__":
    main()
