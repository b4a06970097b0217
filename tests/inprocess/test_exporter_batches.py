"""The in-process span exporter records an error storm as the service does: every trace finished together in
one store transaction, a failing batch trace by trace; and it gives the assembler what the service's walk of
an OTLP export gives, without the export."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from inprocess_support import _isolated_env, read_issues  # noqa: F401
from otel_autoheal.exporters import AutohealEngine, AutohealSpanExporter
from otel_autoheal.exporters._convert import trace_split
from otel_autoheal.otlp import SPAN_RECORD_BYTES, run_links, split_traces
from otel_autoheal.state._history import OCCURRENCES_KEPT
from polling import wait_for

RESOURCE = Resource.create({"service.name": "shop", "service.version": "2.0.0"})
#: Failing requests in the storm: one transaction each would be this many commits.
STORM = 1000
_WAL_HEADER, _FRAME_HEADER = 32, 24


def _committed_transactions(wal: Path) -> int:
    """Transactions in a SQLite write-ahead log: frames of the log's current salt whose header gives the
    database size after a commit (zero in every other frame), read from the file itself."""
    data = wal.read_bytes()
    page_size, salt = int.from_bytes(data[8:12], "big"), data[16:24]
    commits = 0
    for at in range(_WAL_HEADER, len(data) - _FRAME_HEADER + 1, _FRAME_HEADER + page_size):
        frame = data[at:at + _FRAME_HEADER]
        if frame[8:16] != salt:  # left from before the log was last restarted
            break
        commits += int.from_bytes(frame[4:8], "big") != 0
    return commits


class _Snapshot:
    """A reader holding one snapshot of the state database open: SQLite can neither copy the log's later
    frames into the database nor restart the log, so every transaction committed meanwhile stays in it."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT count(*) FROM groups").fetchone()

    def close(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[AutohealEngine]:
    made = AutohealEngine(state_dir=tmp_path / "state", trace_wait=0.3)
    yield made
    made.shutdown()


def _fail(tracer: Any, error: type[Exception], n: int) -> None:
    with pytest.raises(error), tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
        raise error(f"cart {n} cannot be priced")


def _storm(engine: AutohealEngine, errors: list[type[Exception]]) -> TracerProvider:
    """One failing request (a trace of its own) per item of ``errors``, exported together through the exporter."""
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(AutohealSpanExporter(engine), max_queue_size=4 * STORM,
                                                   schedule_delay_millis=60_000))
    tracer = provider.get_tracer("shop")
    for n, error in enumerate(errors):
        _fail(tracer, error, n)
    assert provider.force_flush(30_000)
    return provider


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_error_storm_is_recorded_in_a_transaction_per_batch(engine: AutohealEngine) -> None:
    """A thousand failing requests of one error through the real exporter are all counted, with an occurrence
    key each and the group's latest occurrences, in a few transactions of the state file, not one per trace."""
    path = Path(engine.store.path)
    snapshot = _Snapshot(path)
    provider = None
    try:
        provider = _storm(engine, [KeyError] * STORM)
        assert engine.force_flush(60)
        wait_for(lambda: engine.metrics.value("autoheal_occurrences_total") >= STORM, 60, 0.1, "the storm counted")
        commits = _committed_transactions(Path(f"{path}-wal"))
    finally:
        snapshot.close()
        if provider is not None:
            provider.shutdown()
    assert 1 <= commits <= STORM // 50, f"{commits} transactions for {STORM} failing traces"
    issues = read_issues(path.parent)
    assert [(i["exception_type"], i["count"]) for i in issues] == [("KeyError", STORM)]
    assert _rows(path, "SELECT count(*), count(DISTINCT key) FROM occurrence_keys") == [(STORM, STORM)]
    assert _rows(path, "SELECT count(*) FROM group_occurrences") == [(OCCURRENCES_KEPT,)]
    assert engine.metrics.value("autoheal_occurrences_total") == STORM
    assert engine.metrics.value("autoheal_pipeline_errors_total") == 0


def test_a_failing_batch_is_recorded_trace_by_trace(engine: AutohealEngine, caplog: pytest.LogCaptureFixture) -> None:
    """When the database refuses one trace of a batch (a trigger added to the state file rejects its group),
    the batch's transaction fails and its traces are recorded one by one: only that trace is lost."""
    path = Path(engine.store.path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER refuses_value_error BEFORE INSERT ON groups WHEN NEW.exception_type = 'ValueError'"
                     " BEGIN SELECT RAISE(ABORT, 'refuses_value_error'); END")
    with caplog.at_level(logging.WARNING, logger="otel_autoheal.pipeline"):
        provider = _storm(engine, [KeyError, ValueError, KeyError, IndexError, KeyError])
        try:
            assert engine.force_flush(60)
            wait_for(lambda: engine.metrics.value("autoheal_pipeline_errors_total") >= 1, 60, 0.1, "the refused trace")
        finally:
            provider.shutdown()
    assert any("recording 5 traces at once failed" in r.getMessage() and "one by one" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    counts = {i["exception_type"]: i["count"] for i in read_issues(path.parent)}
    assert counts == {"KeyError": 3, "IndexError": 1}
    assert _rows(path, "SELECT count(*) FROM occurrence_keys") == [(4,)]
    assert engine.metrics.value("autoheal_occurrences_total") == 4
    assert engine.metrics.value("autoheal_pipeline_errors_total") == 1


def _sdk_spans() -> list[Any]:
    """Finished SDK spans of two resources, interleaved: quiet traces, failed spans of every kind of failure."""
    memory = InMemorySpanExporter()
    providers = []
    for name in ("shop", "billing"):
        provider = TracerProvider(resource=Resource.create({"service.name": name, "host.name": "ip-10-0-3-17"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
    shop, billing = (p.get_tracer("app") for p in providers)
    attributes = {"http.route": "/cart/{id}", "retries": 3, "ratio": 0.25, "cached": False, "tags": ("a", "b"),
                  "db.query.text": "SELECT " + "x" * 5000}
    for n in range(30):
        tracer = shop if n % 3 else billing
        with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes=attributes) as root:
            with tracer.start_as_current_span("SELECT carts", kind=SpanKind.CLIENT):
                pass
            if n % 7 == 0:
                with tracer.start_as_current_span("price", attributes=attributes) as failed:
                    failed.record_exception(KeyError(f"sku-{n}"), attributes={"cart": n})
                    if n % 2:
                        failed.set_status(Status(StatusCode.ERROR, f"cannot price cart {n}"))
            with (billing if n % 3 else shop).start_as_current_span("audit", kind=SpanKind.PRODUCER):
                pass
            if n % 5 == 0:
                root.set_status(Status(StatusCode.ERROR, "500"))
    for provider in providers:
        provider.shutdown()
    return list(memory.get_finished_spans())


def _links(runs: list[tuple[bytes, bytes, int]]) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Each trace's ``(span id, parent span id)`` records from its runs, sorted (no parent: empty)."""
    found: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for trace_id, run, _count in runs:
        found.setdefault(trace_id, []).extend((span, b"" if parent == bytes(8) else parent)
                                              for span, parent in run_links(run))
    return {trace_id: sorted(links) for trace_id, links in found.items()}


def _records(run: bytes) -> list[bytes]:
    return [run[at:at + SPAN_RECORD_BYTES] for at in range(0, len(run), SPAN_RECORD_BYTES)]


def _span_id(failed: tuple[Any, bytes, int]) -> str:
    return str(failed[0].span_id)


def test_trace_split_gives_what_the_walk_of_an_otlp_export_gives() -> None:
    """Built from SDK spans directly, the split holds the failed spans as the service's walk of the official
    OTLP encoding of them decodes them, and every other span's record in well-formed runs of its trace."""
    spans = _sdk_spans()
    direct = trace_split(spans)
    walked = split_traces(encode_spans(spans).SerializeToString(), "application/x-protobuf")
    # (An export holds each resource's spans together; the SDK's batch keeps them in the order they ended.)
    assert sorted(direct.failed, key=_span_id) == sorted(walked.failed, key=_span_id) and len(direct.failed) == 11
    assert (direct.accepted, direct.rejected) == (walked.accepted, walked.rejected) == (len(spans), 0)
    assert _links(direct.runs) == _links(walked.runs)
    for _, run, count in direct.runs:
        assert len(run) == SPAN_RECORD_BYTES * count
    # The records are the very bytes the walk keeps of the same spans.
    assert sorted(record for _, run, _ in direct.runs for record in _records(run)) == sorted(
        record for _, run, _ in walked.runs for record in _records(run))
    # Consecutive quiet spans of one trace and resource share a run, as in a scope of an export.
    assert len(direct.runs) < len(spans) - len(direct.failed)
