"""/metrics under load never slows or endangers ingestion; nothing is acknowledged that is not durable."""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_autoheal.config import load_config
from otel_autoheal.errors import ConfigError
from otel_autoheal.state.sqlite import SQLiteStore
from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, span, traces_payload
from polling import wait_for

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SEEDED_GROUPS = 20_000
#: Far above the few milliseconds an error POST takes; below the 5 s the journal used to wait before
#: acknowledging anyway, so a POST stuck behind scrapes times out instead of passing.
POST_TIMEOUT = 5.0
SCRAPERS = 6


def _seed_groups(state_dir: Path, count: int = SEEDED_GROUPS) -> None:
    """``count`` groups with issue-sized bodies, written straight into the store's tables."""
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore.in_dir(state_dir)
    body = "seeded issue body line\n" * 48
    try:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, service,"
                " exception_type, source, grouping_fields)"
                " VALUES (?, ?, ?, 1, 1.0, ?, 'seed', 'SeedError', 'test', '{}')",
                ((f"seed-{i:05d}", f"SeedError {i}", body, 1.0 + i) for i in range(count)),
            )
    finally:
        store.close()


def _post(url: str, payload: dict[str, object], timeout: float = POST_TIMEOUT) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def _error_type(tag: str, index: int) -> str:
    """A distinct exception type per error (letters only: message templates mask digits)."""
    return f"{tag}{''.join(chr(ord('a') + int(d)) for d in f'{index:03d}')}Error"


def _send_error(endpoint: str, error_type: str, as_log: bool) -> int:
    """One error in its own trace, as a failed span or an exception log; returns the HTTP status."""
    trace_id = new_trace_id()
    if as_log:
        payload = logs_payload([log_record("failed", trace_id=trace_id, span_id=new_span_id(), severity="ERROR",
                                           severity_number=17, attributes={"exception.type": error_type,
                                                                           "exception.message": "boom"})])
        return _post(f"{endpoint}/v1/logs", payload)[0]
    exc = {"type": error_type, "message": "boom", "stacktrace": ""}
    return _post(f"{endpoint}/v1/traces", traces_payload([span(trace_id, new_span_id(), "op", exception=exc)]))[0]


def _counts(state_dir: Path, prefix: str) -> dict[str, int]:
    """Occurrence count per exception type starting with ``prefix``, read from the state database."""
    conn = sqlite3.connect(f"{(state_dir / 'autoheal.sqlite3').resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT exception_type, count FROM groups WHERE exception_type LIKE ?",
                            (prefix + "%",)).fetchall()
    finally:
        conn.close()
    return {str(t): int(c) for t, c in rows}


def _metric_text_ok(text: str) -> bool:
    """/metrics answered with the groups gauge and the process metrics."""
    return "autoheal_groups 0" in text.replace(".0\n", "\n") and "process_resident_memory_bytes" in text


class _Scrapers:
    """Threads fetching /metrics back to back until stopped; failures are kept for the test to check."""

    def __init__(self, url: str, count: int = SCRAPERS) -> None:
        self.url = url
        self.scrapes = 0
        self.failures: list[str] = []
        self.ignore_failures = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=30) as response:
                    response.read()
                with self._lock:
                    self.scrapes += 1
            except (OSError, http.client.HTTPException) as exc:
                if not self.ignore_failures.is_set():
                    with self._lock:
                        self.failures.append(repr(exc))

    @contextmanager
    def running(self) -> Iterator[_Scrapers]:
        for thread in self._threads:
            thread.start()
        try:
            wait_for(lambda: self.scrapes >= len(self._threads), 60, message="first scrapes")
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(60)


def test_error_post_is_served_promptly_while_metrics_is_scraped_with_20000_groups(autoheal_factory, tmp_path):
    """With 20,000 groups and several scrapers, error POSTs are acknowledged within a generous socket timeout."""
    state = tmp_path / "big"
    _seed_groups(state)
    svc = autoheal_factory(state_dir=state)
    with _Scrapers(f"{svc.http_endpoint}/metrics").running() as scrapers:
        statuses = [_send_error(svc.http_endpoint, _error_type("Load", i), as_log=i % 2 == 1) for i in range(10)]
        assert statuses == [200] * 10
        text = wait_for(lambda: (lambda t: t if f"autoheal_groups {SEEDED_GROUPS + 10}" in t.replace(".0\n", "\n")
                                 else None)(svc.metrics()), 60, 0.25, "10 new groups on /metrics")
    assert scrapers.failures == []
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
    assert _counts(state, "Load") == {_error_type("Load", i): 1 for i in range(10)}


def test_acknowledged_errors_survive_sigkill_under_scrape_load(autoheal_factory, tmp_path):
    """Errors acknowledged while /metrics is scraped are all recorded, once, after a SIGKILL (several rounds)."""
    state = tmp_path / "crash"
    _seed_groups(state)
    for round_number in range(3):
        tag = f"Kill{chr(ord('a') + round_number)}"
        svc = autoheal_factory(state_dir=state, trace_wait=60)  # nothing is processed before the kill
        scrapers = _Scrapers(f"{svc.http_endpoint}/metrics")
        with scrapers.running():
            statuses = [_send_error(svc.http_endpoint, _error_type(tag, i), as_log=i % 3 == 2) for i in range(12)]
            assert statuses == [200] * 12  # acknowledged
            scrapers.ignore_failures.set()
            svc.stop(signal.SIGKILL)
        restarted = autoheal_factory(state_dir=state)
        expected = {_error_type(tag, i): 1 for i in range(12)}
        wait_for(lambda: len(_counts(state, tag)) == len(expected), 60, 0.25, f"round {round_number} recorded")  # noqa: B023
        restarted.stop()
        assert _counts(state, tag) == expected


def test_journal_that_cannot_commit_refuses_instead_of_acknowledging(autoheal_factory, tmp_path):
    """A journal held off by another writer answers 503 (HTTP logs) / UNAVAILABLE (gRPC spans); retries count once."""
    state = tmp_path / "locked"
    svc = autoheal_factory(state_dir=state, env={"AUTOHEAL_JOURNAL_TIMEOUT": "1"})
    http_error = logs_payload([log_record("failed", trace_id=new_trace_id(), span_id=new_span_id(), severity="ERROR",
                                          severity_number=17, attributes={"exception.type": "HttpLockedError",
                                                                          "exception.message": "boom"})])
    grpc_error = ExportTraceServiceRequest()
    failed = grpc_error.resource_spans.add().scope_spans.add().spans.add(
        name="op", trace_id=bytes.fromhex(new_trace_id()), span_id=bytes.fromhex(new_span_id()))
    failed.status.code = 2
    failed.events.add(name="exception").attributes.add(key="exception.type").value.string_value = "GrpcLockedError"
    holder = sqlite3.connect(state / "autoheal.sqlite3", isolation_level=None)
    with grpc.insecure_channel(svc.grpc_endpoint) as channel:
        export = channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            status, headers = _post(f"{svc.http_endpoint}/v1/logs", http_error, timeout=60)
            assert status == 503 and headers.get("retry-after")
            with pytest.raises(grpc.RpcError) as info:
                export(grpc_error.SerializeToString(), timeout=60)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert svc.metric("autoheal_journal_unavailable_total") == 2
            assert _metric_text_ok(svc.metrics())  # readers are not blocked by the held write lock
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        def grpc_accepted() -> bool:
            try:
                export(grpc_error.SerializeToString(), timeout=60)
                return True
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                return False

        wait_for(lambda: _post(f"{svc.http_endpoint}/v1/logs", http_error, timeout=60)[0] == 200, 60, 0.2, "HTTP retry")
        wait_for(grpc_accepted, 60, 0.2, "gRPC retry")
    issues = svc.wait_for_issues(2)
    assert sorted((i["exception_type"], i["count"]) for i in issues) == [("GrpcLockedError", 1), ("HttpLockedError", 1)]
    svc.stop()
    again = autoheal_factory(state_dir=state)
    assert again.metric("autoheal_journal_replayed_total") == 0  # no refused entry was written after all
    assert sorted((i["exception_type"], i["count"]) for i in again.issues()) == [
        ("GrpcLockedError", 1), ("HttpLockedError", 1)]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_journal_timeout_is_validated(value):
    """journal_timeout must be a positive, finite number of seconds; the error names the key."""
    with pytest.raises(ConfigError) as info:
        load_config(env={"AUTOHEAL_JOURNAL_TIMEOUT": value})
    assert info.value.key == "journal_timeout"


def test_journal_timeout_default_is_documented():
    """The default journal_timeout is 2 seconds, as the README's configuration table says."""
    assert load_config(env={}).journal_timeout == 2.0
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "| `journal_timeout` | `2` |" in readme


def test_traceless_exception_logs_in_flight_survive_sigkill(autoheal_factory, tmp_path):
    """Processing one trace-less exception log never forgets the journal of others still waiting."""
    state = tmp_path / "orphans"
    # max_traces=2: the third log evicts the first, which is processed while the other two wait.
    first = autoheal_factory(state_dir=state, trace_wait=60, env={"AUTOHEAL_MAX_TRACES": "2"})
    names = ["OrphanFirstError", "OrphanSecondError", "OrphanThirdError"]
    for error_type in names:
        payload = logs_payload([log_record("failed", severity="ERROR", severity_number=17, attributes={
            "exception.type": error_type, "exception.message": "boom"})])
        assert _post(f"{first.http_endpoint}/v1/logs", payload)[0] == 200
    wait_for(lambda: _counts(state, "Orphan") == {"OrphanFirstError": 1}, 60, 0.2, "the first log processed")
    first.stop(signal.SIGKILL)
    restarted = autoheal_factory(state_dir=state)
    wait_for(lambda: len(_counts(state, "Orphan")) == 3, 60, 0.2, "the other logs recorded")
    restarted.stop()
    assert _counts(state, "Orphan") == dict.fromkeys(names, 1)


def test_shutdown_refuses_requests_waiting_for_the_journal(autoheal_factory, tmp_path):
    """SIGTERM while a request waits for a locked journal: the service exits and the request is not acknowledged."""
    state = tmp_path / "stopping"
    svc = autoheal_factory(state_dir=state, env={"AUTOHEAL_JOURNAL_TIMEOUT": "600"})
    payload = logs_payload([log_record("failed", severity="ERROR", severity_number=17, attributes={
        "exception.type": "StoppingError", "exception.message": "boom"})])
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(_post(f"{svc.http_endpoint}/v1/logs", payload, timeout=120)[0])
        except (OSError, http.client.HTTPException) as exc:  # the connection closed unanswered
            outcome.append(repr(exc))

    holder = sqlite3.connect(state / "autoheal.sqlite3", isolation_level=None)
    sender = threading.Thread(target=send)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        sender.start()
        wait_for(lambda: svc.metric("autoheal_journal_waiting") == 1, 60, 0.1, "the request waiting for the journal")
        assert svc.proc is not None
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(60) == 0  # far less than the 600 s journal_timeout the request could wait
        sender.join(120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert outcome and outcome[0] != 200
    again = autoheal_factory(state_dir=state)
    assert again.metric("autoheal_journal_replayed_total") == 0  # nothing of the refused request was kept
