"""Three otel-autoheal instances behind the collector's load_balancing exporter, sharing PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector_stack import Binaries, Collector, start_collector, wait_for
from tests.conftest import REPO, AutohealProcess
from tests.otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, now_nanos, span, traces_payload
from tests.postgres_server import PostgresServer

BUGS = 6
EACH = 5
DEADLINE_S = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stack(bug: int, order: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/orders.py", line 12, in handle\n'
        "    step()\n"
        f'  File "/srv/shop/bugs/bug{bug}.py", line 7, in bug_{bug}\n'
        f'    raise ValueError("bug {bug} broke order {order}")\n'
        f"ValueError: bug {bug} broke order {order}\n"
    )


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.status


def _send_failures(collector: Collector, orders: range) -> None:
    """One failing trace per order: a root span, a failed child with the bug's exception, and a log."""
    for order in orders:
        bug = order % BUGS
        trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
        start = now_nanos()
        spans = [
            span(trace_id, root, "POST /orders", error=True, kind=2, start=start),
            span(trace_id, child, f"bug_{bug}", parent=root, start=start + 1000,
                 exception={"type": "ValueError", "message": f"bug {bug} broke order {order}",
                            "stacktrace": _stack(bug, order)}),
        ]
        resource = {"service.name": "shop", "service.version": "1.0.0"}
        _post(f"{collector.http_endpoint}/v1/logs", logs_payload(
            [log_record(f"taking order {order}", trace_id=trace_id, span_id=child, time_nanos=start)], resource))
        _post(f"{collector.http_endpoint}/v1/traces", traces_payload(spans, resource))


class Instance:
    """One ``otel-autoheal serve`` on fixed ports (so that it can be killed and started again)."""

    def __init__(self, name: str, database_url: str, workdir: Path, **settings: str) -> None:
        self.name = name
        self.grpc = f"127.0.0.1:{_free_port()}"
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in __import__("os").environ.items()
                    if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
        self.env.update({"AUTOHEAL_DATABASE_URL": database_url, "AUTOHEAL_INSTANCE_ID": name})
        self.env.update({f"AUTOHEAL_{k.upper()}": v for k, v in settings.items()})
        self.proc: AutohealProcess | None = None
        self.runs = 0

    def start(self) -> Instance:
        state = self.workdir / f"run{self.runs}"  # unused with PostgreSQL; keeps each run's log
        state.mkdir()
        self.runs += 1
        self.proc = AutohealProcess(state, ["--trace-wait", "1", "--otlp-grpc", self.grpc], self.env).start()
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def busy(self) -> float:
        """Traces held or waiting in this instance (0 when all it received is recorded)."""
        assert self.proc is not None
        return self.proc.metric("autoheal_traces_held") + self.proc.metric("autoheal_traces_ready")


def _issues(database_url: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--database-url", database_url],
                         capture_output=True, check=True, cwd=REPO, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _queued(collector: Collector) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in collector.metrics_text().splitlines()
               if line.startswith("otelcol_exporter_queue_size") and "load_balancing" in line)


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    stops: list[Callable[[], None]] = []
    try:
        yield stops
    finally:
        for stop in reversed(stops):
            stop()


def _start_all(url: str, tmp_path: Path, binaries: Binaries, cleanup: list[Callable[[], None]], count: int,
               **settings: str) -> tuple[list[Instance], Collector]:
    instances = [Instance(f"node{i}", url, tmp_path, **settings) for i in range(count)]
    for instance in instances:
        cleanup.append(instance.stop)
        instance.start()
    collector = start_collector(
        binaries.otelcol, tmp_path, autoheal_endpoint="127.0.0.1:1", jaeger_endpoint="127.0.0.1:1",
        configs=("otelcol-autoheal.yaml", "otelcol-loadbalancing.yaml"),
        env={"AUTOHEAL_BACKENDS": "[" + ", ".join(i.grpc for i in instances) + "]"},
    )
    cleanup.append(collector.stop)
    return instances, collector


def _settled(url: str, collector: Collector, instances: list[Instance], total: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        collector.process.check_alive()
        try:
            issues = _issues(url)
        except subprocess.CalledProcessError:
            return None  # the database is still coming back
        if sum(i["count"] for i in issues) < total or _queued(collector) > 0:
            return None
        if any(i.busy() > 0 for i in instances):
            return None
        return issues

    result: list[dict[str, Any]] = wait_for(probe, timeout=DEADLINE_S, what=f"{total} occurrences recorded and "
                                            "nothing in flight", on_timeout=collector.process.log_tail)
    return result


def _assert_exact(issues: list[dict[str, Any]]) -> None:
    counts = sorted((i["count"], i["title"]) for i in issues)
    assert len(issues) == BUGS, counts
    assert all(count == EACH for count, _ in counts), f"lost or duplicated occurrences: {counts}"


def test_a_postgres_restart_mid_stream_loses_nothing(
    scaleout_binaries: Binaries, pg_server: PostgresServer, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    """PostgreSQL stopped and started while errors stream in: the instances reconnect, every occurrence counts once."""
    url = pg_server.new_database()
    # Errors whose processing failed while the database was away are processed again after 3 s.
    instances, collector = _start_all(url, tmp_path, scaleout_binaries, cleanup, 2, journal_retry_after="3")
    total = BUGS * EACH
    _send_failures(collector, range(total // 2))
    wait_for(lambda: sum(i["count"] for i in _issues(url)) > 0, timeout=DEADLINE_S, what="a first occurrence")
    pg_server.stop_server("fast")
    try:
        _send_failures(collector, range(total // 2, total))  # the collector accepts; the instances refuse (503)
        wait_for(lambda: any(i.proc is not None and i.proc.metric("autoheal_journal_unavailable_total") > 0
                             for i in instances),
                 timeout=DEADLINE_S, what="an instance to refuse an export while the database is down")
    finally:
        pg_server.start()
    _assert_exact(_settled(url, collector, instances, total))


def test_three_instances_count_like_one_through_a_crash(
    scaleout_binaries: Binaries, pg_server: PostgresServer, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    """Failing traces spread over 3 instances, one SIGKILLed and restarted mid-stream: same groups, exact counts."""
    url = pg_server.new_database()
    instances, collector = _start_all(url, tmp_path, scaleout_binaries, cleanup, 3)
    total = BUGS * EACH
    _send_failures(collector, range(total // 2))
    victim = instances[1]
    wait_for(lambda: victim.proc is not None and victim.proc.metric("autoheal_spans_received_total") > 0,
             timeout=DEADLINE_S, what="the victim to receive part of the stream")
    victim.kill()
    _send_failures(collector, range(total // 2, total))
    victim.start()

    _assert_exact(_settled(url, collector, instances, total))
    received = [i.proc.metric("autoheal_spans_received_total") for i in instances if i.proc is not None]
    assert sum(1 for r in received if r > 0) >= 2, f"no load balancing: spans per instance {received}"
