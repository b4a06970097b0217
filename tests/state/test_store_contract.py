"""One contract, two state stores: SQLite (the embedded default) and PostgreSQL (shared by instances)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_autoheal.errors import StateError
from otel_autoheal.model import ExceptionRecord, GroupStats, Occurrence
from otel_autoheal.otlp import LogData, from_journal, journal_payload
from otel_autoheal.state._dialect import PortableConn
from otel_autoheal.state._history import (
    DAYS_KEPT,
    HOURS_KEPT,
    OCCURRENCES_KEPT,
    change_token,
    day_buckets,
    detail,
    hour_buckets,
    recent_occurrences,
)
from otel_autoheal.state.postgres import SCHEMA_VERSION, PostgresStore, redacted_url
from otel_autoheal.state.sqlite import MAX_TRACE_IDS_PER_GROUP, SQLiteStore
from tests.postgres_server import PostgresServer

Store = SQLiteStore | PostgresStore



class Backend:
    """Opens stores of one kind on one fresh database (SQLite file or PostgreSQL database)."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._opened: list[Store] = []
        if kind == "sqlite":
            self.target = str(tmp_path / "state.sqlite3")
        else:
            self.target = request.getfixturevalue("pg_server").new_database()

    def open(self) -> Store:
        store: Store = SQLiteStore(self.target) if self.kind == "sqlite" else PostgresStore(self.target)
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path, request)
    try:
        yield b
    finally:
        b.close_all()


def occurrence(fingerprint: str, *, version: str = "", trace_id: str = "", when: float = 1_700_000_000.0) -> Occurrence:
    exc = ExceptionRecord(
        type="ValueError", message="bad input", stacktrace="", time_unix_nano=int(when * 1e9),
        trace_id=trace_id, span_id="", origin="span_event",
        resource={"service.name": "shop", "service.version": version, "autoheal.source": "cli"},
    )
    return Occurrence(fingerprint=fingerprint, grouping_fields=["ValueError", "app.py:main"],
                      title="ValueError: bad input", body="", exception=exc)


def render(stats: GroupStats) -> tuple[str, str]:
    return f"seen {stats.count}", f"count={stats.count} versions={','.join(stats.versions)} prev={stats.title}"


class Chained:
    """An ``IssueRenderer`` whose titles show every occurrence they followed; counts its full renders."""

    def __init__(self, fail_on: str = "") -> None:
        self.issues: list[str] = []
        self.fail_on = fail_on

    def title(self, occ: Occurrence, previous: str) -> str:
        return f"{previous}>{occ.exception.trace_id[-2:]}"

    def issue(self, occ: Occurrence, stats: GroupStats) -> tuple[str, str]:
        if occ.fingerprint == self.fail_on:
            raise RuntimeError("renderer failed")
        self.issues.append(occ.fingerprint)
        return self.title(occ, stats.title), f"count={stats.count} versions={','.join(stats.versions)} sample={occ.trace_id}"


def test_a_new_fingerprint_opens_a_group_and_a_repeat_counts_in_it(backend: Backend) -> None:
    """The first occurrence creates the group; the second increments it and the renderer sees both counts."""
    store = backend.open()
    first = store.record(occurrence("fp-a"), render, now=1_700_000_100.0)
    second = store.record(occurrence("fp-a", when=1_700_000_050.0), render, now=1_700_000_200.0)
    assert first.is_new and not second.is_new
    group = store.group_by_fingerprint("fp-a")
    assert group is not None and group.count == 2 and group.title == "seen 2"
    assert group.body == "count=2 versions= prev=seen 1"
    assert (group.first_seen, group.last_seen) == (1_700_000_000.0, 1_700_000_050.0)
    assert (group.first_processed, group.last_processed) == (1_700_000_100.0, 1_700_000_200.0)
    assert (group.service, group.exception_type, group.source) == ("shop", "ValueError", "cli")
    assert store.group(group.id) == group


def test_not_found_is_none(backend: Backend) -> None:
    """Unknown ids and fingerprints give None, never an exception."""
    store = backend.open()
    assert store.group(12345) is None and store.group_by_fingerprint("nope") is None
    assert store.groups() == [] and store.group_count() == 0


def test_versions_are_reported_once_and_in_order(backend: Backend) -> None:
    """A version is "new" only the first time a known group sees it; versions keep first-seen order."""
    store = backend.open()
    store.record(occurrence("fp-v", version="1.0", trace_id="01" * 16), render, now=1.0e9)
    again = store.record(occurrence("fp-v", version="1.0", trace_id="02" * 16), render, now=1.0e9 + 1)
    newer = store.record(occurrence("fp-v", version="1.1", trace_id="03" * 16), render, now=1.0e9 + 2)
    assert not again.new_version and newer.new_version
    assert newer.group.versions == ("1.0", "1.1")


def test_trace_ids_are_bounded_newest_first(backend: Backend) -> None:
    """A group keeps its newest MAX_TRACE_IDS_PER_GROUP trace ids, newest first."""
    store = backend.open()
    total = MAX_TRACE_IDS_PER_GROUP + 5
    for i in range(total):
        store.record(occurrence("fp-t", trace_id=f"{i:032x}"), render, now=1.0e9 + i)
    group = store.group_by_fingerprint("fp-t")
    assert group is not None
    assert group.trace_ids == tuple(f"{i:032x}" for i in reversed(range(5, total)))


def test_groups_are_listed_newest_activity_first(backend: Backend) -> None:
    """groups() orders by the errors' own last-seen time and carries versions and traces."""
    store = backend.open()
    store.record(occurrence("old", when=1_600_000_000.0, version="1"), render, now=1.7e9)
    store.record(occurrence("new", when=1_650_000_000.0, trace_id="ab" * 16), render, now=1.7e9)
    listed = store.groups()
    assert [g.fingerprint for g in listed] == ["new", "old"]
    assert listed[0].trace_ids == ("ab" * 16,) and listed[1].versions == ("1",)
    assert store.group_count() == 2


def test_journal_round_trip_and_clearing_by_trace(backend: Backend) -> None:
    """Journalled entries come back in order; clearing a trace up to a high-water mark keeps later ones."""
    store = backend.open()
    store.journal_add([("t1", "span", "p1"), ("t2", "log", "p2")])
    mark = store.journal_high_water()
    store.journal_add([("t1", "span", "p3")])
    assert [e[1:] for e in store.journal_entries()] == [("t1", "span", "p1"), ("t2", "log", "p2"), ("t1", "span", "p3")]
    store.journal_done("t1", up_to_id=mark)
    assert [e[1:] for e in store.journal_entries()] == [("t2", "log", "p2"), ("t1", "span", "p3")]
    store.record(occurrence("fp-j", trace_id="t2"), render, journal_trace=("t2", None))
    assert [e[1:] for e in store.journal_entries()] == [("t1", "span", "p3")]


def test_journal_keeps_a_record_with_nul_characters(backend: Backend) -> None:
    """A record whose texts contain NUL (before intake scrubbing replaces it) is journalled and read back whole:
    ``journal_payload`` writes NUL as the JSON escape, which both stores' TEXT columns take."""
    store = backend.open()
    record = LogData("ab" * 16, "cd" * 8, 1, 17, "ERR\u0000OR", "bad\u0000body", {"k\u0000": "v\u0000"}, {}, scope="s\u0000")
    store.journal_add([(record.trace_id, "log", journal_payload(record))])
    [(_, key, kind, payload)] = store.journal_entries()
    assert (key, kind, from_journal(kind, payload)) == (record.trace_id, "log", record)


def test_a_failing_renderer_leaves_nothing_behind(backend: Backend) -> None:
    """An error inside record() rolls the whole occurrence back, journal clearing included."""
    store = backend.open()
    store.journal_add([("t9", "span", "p")])

    def broken(stats: GroupStats) -> tuple[str, str]:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        store.record(occurrence("fp-x", trace_id="t9"), broken, journal_trace=("t9", None))
    assert store.group_by_fingerprint("fp-x") is None
    assert len(store.journal_entries()) == 1


def test_state_survives_reopening(backend: Backend) -> None:
    """A second store on the same database sees what the first recorded."""
    backend.open().record(occurrence("fp-r"), render)
    again = backend.open().group_by_fingerprint("fp-r")
    assert again is not None and again.count == 1


def test_concurrent_writers_sum_their_counts(backend: Backend) -> None:
    """Two stores (as two instances would) recording one fingerprint at once end with one group and the sum."""
    stores = [backend.open(), backend.open()]
    per_writer = 40
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(store: Store, writer: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_writer):
                store.record(occurrence("fp-c", version="2.0", trace_id=f"{writer:016x}{i:016x}"), render)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[i % 2], i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert stores[0].group_count() == 1
    group = stores[1].group_by_fingerprint("fp-c")
    assert group is not None and group.count == 4 * per_writer and group.title == f"seen {4 * per_writer}"


def test_closed_store_refuses_work(backend: Backend) -> None:
    """After close() every call raises StateError, and close() may be called again."""
    store = backend.open()
    store.close()
    with pytest.raises(StateError):
        store.record(occurrence("fp-z"), render)
    store.close()


def test_newer_schema_is_refused_with_a_clear_message(backend: Backend) -> None:
    """A database written by a newer otel-autoheal is refused at open, naming the version."""
    store = backend.open()
    if isinstance(store, SQLiteStore):
        with store.transaction() as conn:
            conn.execute("PRAGMA user_version = 99")
    else:
        with store.transaction() as conn:
            conn.execute("UPDATE autoheal_schema SET version = 99")
    store.close()
    with pytest.raises(StateError, match="schema version 99, newer"):
        backend.open()


def _pg(request: pytest.FixtureRequest) -> PostgresServer:
    server: Any = request.getfixturevalue("pg_server")
    return server


def test_postgres_server_restart_fails_one_call_then_recovers(request: pytest.FixtureRequest) -> None:
    """A restarted PostgreSQL fails the calls made while it is down with StateError; later calls work again."""
    server = _pg(request)
    store = PostgresStore(server.new_database(), connect_timeout=5.0)
    try:
        store.record(occurrence("fp-p", trace_id="01" * 16), render)
        server.stop_server("immediate")
        with pytest.raises(StateError):
            store.record(occurrence("fp-p", trace_id="02" * 16), render)
        server.start()
        store.record(occurrence("fp-p", trace_id="03" * 16), render)
        group = store.group_by_fingerprint("fp-p")
        assert group is not None and group.count == 2
    finally:
        store.close()


def test_postgres_errors_never_show_the_password(request: pytest.FixtureRequest) -> None:
    """An unreachable database is a one-line StateError whose URL has the password masked."""
    url = "postgresql://autoheal:s3cret-pw@127.0.0.1:1/none"
    with pytest.raises(StateError) as info:
        PostgresStore(url, connect_timeout=1.0)
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)
    assert redacted_url(url) == "postgresql://autoheal:***@127.0.0.1:1/none"


def test_a_repeated_delivery_is_counted_once(backend: Backend) -> None:
    """The same occurrence recorded again (a retry, a replay) is a duplicate: no count, journal cleared."""
    store = backend.open()
    first = store.record(occurrence("fp-d", trace_id="aa" * 16), render)
    store.journal_add([("aa" * 16, "span", "p")])
    again = store.record(occurrence("fp-d", trace_id="aa" * 16), render, journal_trace=("aa" * 16, None))
    assert not first.duplicate and again.duplicate and not again.is_new
    assert again.group.count == 1 and store.journal_entries() == []
    other = store.record(occurrence("fp-d", trace_id="bb" * 16), render)
    assert not other.duplicate and other.group.count == 2


def test_instances_racing_on_one_delivery_count_it_once(backend: Backend) -> None:
    """Two stores recording the very same occurrences at once count each one exactly once."""
    stores = [backend.open(), backend.open()]
    barrier = threading.Barrier(2)
    results: list[list[bool]] = [[], []]

    def work(index: int) -> None:
        barrier.wait(timeout=30)
        for i in range(30):
            update = stores[index].record(occurrence("fp-race", trace_id=f"{i:032x}"), render)
            results[index].append(update.duplicate)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    group = stores[0].group_by_fingerprint("fp-race")
    assert group is not None and group.count == 30
    assert sum(not d for r in results for d in r) == 30


# -- the page's occurrence history (written by record() in its transaction, read by the page) --------


def _read(store: Store, read: Callable[..., Any], *args: Any) -> Any:
    """``read(conn, *args)`` on one read snapshot of ``store``, through the shared SQL."""
    with store.read() as conn:
        return read(PortableConn(conn, store.dialect), *args)


def _rows(conn: PortableConn, table: str, group_id: int) -> tuple[int, int]:
    row = conn.execute(f"SELECT COUNT(*), COALESCE(MIN(id), 0) FROM {table} WHERE group_id = ?"
                       if table == "group_occurrences" else
                       f"SELECT COUNT(*), COALESCE(MIN({'hour' if table == 'group_hours' else 'day'}), 0)"
                       f" FROM {table} WHERE group_id = ?", (group_id,)).fetchone()
    return int(row[0]), int(row[1])


def test_history_is_bucketed_by_the_errors_time_and_bounded(backend: Backend) -> None:
    """Hour and day buckets count by the error's own time; old buckets and occurrences beyond the bounds are pruned."""
    store = backend.open()
    now = 1_750_000_000.0
    # 200 occurrences spread over 150 days (the older ones arrive as late data with their own times).
    for index in range(200):
        store.record(occurrence("fp-h", trace_id=f"{index:032x}", version=f"1.{index // 50}",
                                when=now - index * 86400 * 0.75), render, now=now)
    for index in range(3):
        store.record(occurrence("fp-b", trace_id=f"b{index:031x}", when=now - 7200), render, now=now)
    a, b = store.group_by_fingerprint("fp-h"), store.group_by_fingerprint("fp-b")
    assert a is not None and b is not None and a.count == 200
    hours, oldest_hour = _read(store, _rows, "group_hours", a.id)
    days, oldest_day = _read(store, _rows, "group_days", a.id)
    kept, _ = _read(store, _rows, "group_occurrences", a.id)
    assert 0 < hours <= HOURS_KEPT and oldest_hour > int(now // 3600) - HOURS_KEPT
    assert 0 < days <= DAYS_KEPT and oldest_day > int(now // 86400) - DAYS_KEPT
    assert kept == OCCURRENCES_KEPT
    today = int(now // 86400)
    by_day = _read(store, day_buckets, [a.id], today - 13)[a.id]
    assert sum(by_day.values()) == len([i for i in range(200) if int((now - i * 86400 * 0.75) // 86400) > today - 14])
    assert _read(store, hour_buckets, [b.id], int(now // 3600) - 23)[b.id] == {int(now // 3600) - 2: 3}
    recent = _read(store, recent_occurrences, a.id)
    # The last 50 recorded are the oldest errors (indices 150-199, version 1.3), listed by their own time.
    assert len(recent) == OCCURRENCES_KEPT and {r["version"] for r in recent} == {"1.3"}
    assert recent[0]["time"] == now - 150 * 86400 * 0.75 and recent[0]["trace_id"] == f"{150:032x}"
    assert all(r["processed"] == now for r in recent)
    newest = _read(store, detail, a.id)
    assert newest is not None and newest["trace_id"] == f"{199:032x}" and newest["version"] == "1.3"
    assert _read(store, detail, 999_999) is None


def test_history_moves_only_with_counted_occurrences(backend: Backend) -> None:
    """A repeated delivery or a failed record adds no history and leaves the change token; a counted one moves it."""
    store = backend.open()
    now = time.time()
    store.record(occurrence("fp-m", trace_id="aa" * 16, when=now), render, now=now)
    group = store.group_by_fingerprint("fp-m")
    assert group is not None
    token = _read(store, change_token, now)
    store.record(occurrence("fp-m", trace_id="aa" * 16, when=now), render, now=now)

    def broken(stats: GroupStats) -> tuple[str, str]:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        store.record(occurrence("fp-m", trace_id="bb" * 16, when=now), broken, now=now)
    assert _read(store, change_token, now) == token
    assert len(_read(store, recent_occurrences, group.id)) == 1
    store.record(occurrence("fp-m", trace_id="cc" * 16, when=now), render, now=now)
    assert _read(store, change_token, now) != token
    assert sum(_read(store, hour_buckets, [group.id], int(now // 3600))[group.id].values()) == 2


def test_concurrent_writers_keep_one_history(backend: Backend) -> None:
    """Two stores recording one group at once: the buckets add up to the count and the occurrences stay bounded."""
    stores = [backend.open(), backend.open()]
    now = time.time()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(writer: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(40):
                stores[writer].record(occurrence("fp-ch", trace_id=f"{writer:016x}{i:016x}", when=now), render)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    group = stores[0].group_by_fingerprint("fp-ch")
    assert group is not None and group.count == 80
    hour = int(now // 3600)
    assert _read(stores[1], hour_buckets, [group.id], hour)[group.id] == {hour: 80}
    assert _read(stores[1], day_buckets, [group.id], int(now // 86400))[group.id] == {int(now // 86400): 80}
    assert len(_read(stores[1], recent_occurrences, group.id)) == OCCURRENCES_KEPT


def test_postgres_schema_1_is_migrated_to_the_history(request: pytest.FixtureRequest) -> None:
    """A version-1 PostgreSQL database (no history tables) gains them at start-up, keeping its groups."""
    url = _pg(request).new_database()
    store = PostgresStore(url)
    try:
        store.record(occurrence("fp-old"), render)
        with store.transaction() as conn:
            for table in ("group_hours", "group_days", "group_occurrences", "group_details"):
                conn.execute(f"DROP TABLE {table}")
            conn.execute("UPDATE autoheal_schema SET version = 1")
    finally:
        store.close()
    store = PostgresStore(url)
    try:
        with store.read() as conn:
            assert conn.execute("SELECT version FROM autoheal_schema").fetchone()[0] == SCHEMA_VERSION == 2
        old = store.group_by_fingerprint("fp-old")
        assert old is not None and old.count == 1 and _read(store, detail, old.id) is None
        store.record(occurrence("fp-old", trace_id="dd" * 16, when=time.time()), render)
        assert _read(store, detail, old.id) is not None
        assert len(_read(store, recent_occurrences, old.id)) == 1
    finally:
        store.close()


def _round_trips(trace: str) -> int:
    """Times the client sent and then waited for the server, in a libpq protocol trace."""
    trips, sending = 0, False
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        trips += direction == "F" and not sending
        sending = direction == "F" if direction in ("F", "B") else sending
    return trips


@pytest.mark.parametrize("size", [1, 40])
def test_postgres_record_waits_for_the_server_four_times(request: pytest.FixtureRequest, tmp_path: Path,
                                                         size: int) -> None:
    """A counted occurrence (version, trace, history, journal cleared) costs four round trips, the pool's check
    included, and so does a batch of forty over three groups."""
    from psycopg import pq

    store = PostgresStore(_pg(request).new_database(), pool_size=1)
    try:
        store.record(occurrence("fp-rt", version="1.0", trace_id="01" * 16), render)
        store.journal_add([("02" * 16, "span", "p")])
        trace = tmp_path / "libpq.trace"
        with trace.open("w") as handle:
            with store.transaction() as conn:  # the pool's only connection: the record below uses it
                conn.pgconn.trace(handle.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            if size == 1:
                update = store.record(occurrence("fp-rt", version="1.0", trace_id="02" * 16), render,
                                      journal_trace=("02" * 16, None))
            else:
                batch = [occurrence(f"fp-rt{'' if i < 38 else i}", version="1.0", trace_id=f"{i + 2:032x}")
                         for i in range(size)]
                update = store.record_many(batch, Chained(), journal=[("02" * 16, None)])[0]
            with store.transaction() as conn:
                conn.pgconn.untrace()
        newest = "02" * 16 if size == 1 else f"{37 + 2:032x}"
        assert update.group.count == 2 and update.group.trace_ids[0] == newest and store.journal_entries() == []
        # The transaction that switched tracing off: the pool's check, BEGIN, COMMIT (one trip each).
        assert _round_trips(trace.read_text()) - 3 == 4
    finally:
        store.close()


def test_postgres_database_error_inside_record_rolls_back_and_the_connection_stays_usable(
        request: pytest.FixtureRequest) -> None:
    """A statement the database refuses mid-record is a StateError; nothing is kept and the next record works."""
    store = PostgresStore(_pg(request).new_database(), pool_size=1)
    try:
        store.record(occurrence("fp-nul", trace_id="01" * 16), render)
        store.journal_add([("02" * 16, "span", "p")])
        with pytest.raises(StateError):
            store.record(occurrence("fp-nul", trace_id="02" * 16), lambda stats: ("title", "nul \x00 byte"),
                         journal_trace=("02" * 16, None))
        group = store.group_by_fingerprint("fp-nul")
        assert group is not None and group.count == 1 and len(store.journal_entries()) == 1
        with store.transaction() as conn:
            assert conn.autocommit is False  # the pipelined record's own BEGIN/COMMIT mode is not left behind
        again = store.record(occurrence("fp-nul", trace_id="02" * 16), render, journal_trace=("02" * 16, None))
        assert not again.duplicate and again.group.count == 2 and store.journal_entries() == []
    finally:
        store.close()


def test_postgres_key_claimed_while_waiting_for_the_group_lock_is_counted_once(
        request: pytest.FixtureRequest) -> None:
    """An occurrence another instance counts while this one waits for the group's lock rolls back and is a duplicate."""
    import psycopg

    from tests.polling import wait_for

    url = _pg(request).new_database()
    store = PostgresStore(url)
    try:
        store.record(occurrence("fp-claim", trace_id="01" * 16), render)
        late = occurrence("fp-claim", trace_id="02" * 16)
        outcome: list[Any] = []
        # The other instance, mid-record, holds the group's lock; the watcher sees who waits for it.
        with psycopg.connect(url) as other, psycopg.connect(url, autocommit=True) as watcher:
            other.execute("SELECT id FROM groups WHERE fingerprint = 'fp-claim' FOR UPDATE")
            worker = threading.Thread(target=lambda: outcome.append(store.record(late, render)))
            worker.start()
            try:
                wait_for(lambda: watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone(), timeout=60, message="record() never waited for the group's lock")
                other.execute("INSERT INTO occurrence_keys (key, group_id, seen)"
                              " SELECT %s, id, 0 FROM groups WHERE fingerprint = 'fp-claim'", (late.key,))
                other.execute("UPDATE groups SET count = count + 1 WHERE fingerprint = 'fp-claim'")
                other.commit()
            finally:
                worker.join(timeout=60)
        assert len(outcome) == 1 and outcome[0].duplicate and outcome[0].group.count == 2
        with store.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM group_occurrences").fetchone()[0] == 1  # history: only the first
    finally:
        store.close()


# -- batches: record_many ---------------------------------------------------------------------------


def _mixed_batch(prefix: str, now: float) -> list[Occurrence]:
    """60 occurrences of one group and 12 of another, interleaved, over two versions and several hours."""
    batch = []
    for i in range(72):
        fp = f"{prefix}-b" if i % 6 == 5 else f"{prefix}-a"
        batch.append(occurrence(fp, trace_id=f"{i:032x}", version="1.0" if i < 40 else "1.1",
                                when=now - 3600 * (i % 3)))
    return batch


def _history(store: Store, group_id: int, now: float) -> tuple[Any, ...]:
    recent = [(r["time"], r["version"], r["trace_id"]) for r in _read(store, recent_occurrences, group_id)]
    found = _read(store, detail, group_id)
    return (_read(store, hour_buckets, [group_id], int(now // 3600) - 23)[group_id],
            _read(store, day_buckets, [group_id], 0)[group_id], recent, found["trace_id"])


def test_a_batch_stores_what_recording_one_by_one_stores(backend: Backend) -> None:
    """record_many leaves the same counts, titles, versions, traces and history as record() per occurrence,
    rendering each group's issue once, after its last occurrence."""
    store = backend.open()
    now = time.time()
    renderer = Chained()
    singles = _mixed_batch("one", now)
    for occ in singles:
        store.record(occ, lambda stats, occ=occ: renderer.issue(occ, stats))
    renderer.issues.clear()
    updates = store.record_many(_mixed_batch("many", now), renderer)
    assert sorted(renderer.issues) == ["many-a", "many-b"]
    for suffix, count in (("a", 60), ("b", 12)):
        one, many = store.group_by_fingerprint(f"one-{suffix}"), store.group_by_fingerprint(f"many-{suffix}")
        assert one is not None and many is not None and many.count == one.count == count
        assert (many.title, many.body) == (one.title, one.body) and many.title.count(">") == count
        assert (many.first_seen, many.last_seen, many.versions, many.trace_ids, many.source) == (
            one.first_seen, one.last_seen, one.versions, one.trace_ids, one.source)
        assert len(many.trace_ids) == min(count, MAX_TRACE_IDS_PER_GROUP)
        assert _history(store, many.id, now) == _history(store, one.id, now)
    # One update per occurrence, with the group's numbers right after it and the issue as stored.
    a_updates = [u for u in updates if u.group.fingerprint == "many-a"]
    assert [u.group.count for u in a_updates] == list(range(1, 61))
    assert [u.is_new for u in a_updates] == [True] + [False] * 59
    assert [u.occurrence.exception.service_version for u in a_updates if u.new_version] == ["1.1"]
    assert a_updates[0].group.versions == ("1.0",) and a_updates[-1].group.versions == ("1.0", "1.1")
    assert {u.group.body for u in a_updates} == {store.group_by_fingerprint("many-a").body}  # type: ignore[union-attr]


def test_a_batch_counts_on_from_stored_groups(backend: Backend) -> None:
    """A batch continues the stored count and title chain of a group recorded before, and a later batch continues it."""
    store = backend.open()
    store.record(occurrence("fp-c", trace_id="aa" * 16), render)
    renderer = Chained()
    store.record_many([occurrence("fp-c", trace_id=f"{i:032x}") for i in range(3)], renderer)
    updates = store.record_many([occurrence("fp-c", trace_id=f"{i:032x}") for i in range(3, 5)], renderer)
    group = store.group_by_fingerprint("fp-c")
    assert group is not None and group.count == 6 and [u.group.count for u in updates] == [5, 6]
    assert group.title == "seen 1>00>01>02>03>04" and renderer.issues == ["fp-c", "fp-c"]


def test_a_repeated_delivery_within_a_batch_counts_once(backend: Backend) -> None:
    """An occurrence twice in one batch, or counted before the batch, is a duplicate there: counted once."""
    store = backend.open()
    store.record(occurrence("fp-dd", trace_id="aa" * 16), render)
    batch = [occurrence("fp-dd", trace_id="aa" * 16), occurrence("fp-dd", trace_id="bb" * 16),
             occurrence("fp-new", trace_id="cc" * 16), occurrence("fp-dd", trace_id="bb" * 16),
             occurrence("fp-new", trace_id="cc" * 16)]
    updates = store.record_many(batch, Chained())
    assert [u.duplicate for u in updates] == [True, False, False, True, True]
    assert [u.group.count for u in updates if not u.duplicate] == [2, 1]
    dd, new = store.group_by_fingerprint("fp-dd"), store.group_by_fingerprint("fp-new")
    assert dd is not None and new is not None and (dd.count, new.count) == (2, 1)
    assert len(_read(store, recent_occurrences, dd.id)) == 2
    assert len(_read(store, recent_occurrences, new.id)) == 1


def test_a_failing_batch_leaves_nothing_behind(backend: Backend) -> None:
    """An error while recording a batch rolls all of it back: no group, no count, the journal kept."""
    store = backend.open()
    store.record(occurrence("fp-ok", trace_id="aa" * 16), render)
    store.journal_add([("bb" * 16, "span", "p"), ("cc" * 16, "span", "p")])
    batch = [occurrence("fp-ok", trace_id="bb" * 16), occurrence("fp-bad", trace_id="cc" * 16)]
    with pytest.raises(RuntimeError):
        store.record_many(batch, Chained(fail_on="fp-bad"), journal=[("bb" * 16, None), ("cc" * 16, None)])
    ok = store.group_by_fingerprint("fp-ok")
    assert ok is not None and ok.count == 1 and store.group_by_fingerprint("fp-bad") is None
    assert len(store.journal_entries()) == 2
    assert store.record_many([batch[0]], Chained(), journal=[("bb" * 16, None)])[0].group.count == 2
    assert [e[1] for e in store.journal_entries()] == ["cc" * 16]


def test_a_batch_without_occurrences_only_clears_its_journal(backend: Backend) -> None:
    """Traces whose errors were all recorded before still have their journal cleared by an empty batch."""
    store = backend.open()
    store.journal_add([("aa" * 16, "span", "p"), ("bb" * 16, "span", "p")])
    assert store.record_many([], Chained(), journal=[("aa" * 16, None)]) == []
    assert [e[1] for e in store.journal_entries()] == ["bb" * 16] and store.group_count() == 0
