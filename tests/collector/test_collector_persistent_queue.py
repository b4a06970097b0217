"""The persistent sending queue: what the collector accepted survives a crash of the collector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from collector_stack import Binaries, Collector, Jaeger, start_collector, wait_for
from otlp_sink import OtlpSink
from scenario import Scenario, send_scenario

DEADLINE_S = 120.0


def _start(
    binaries: Binaries, jaeger: Jaeger, workdir: Path, sink: OtlpSink, queue: Path, configs: Sequence[str]
) -> Collector:
    return start_collector(
        binaries.otelcol,
        workdir,
        autoheal_endpoint=sink.endpoint,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        configs=configs,
        env={"OTELCOL_QUEUE_DIR": str(queue), "AUTOHEAL_BACKENDS": f"[{sink.endpoint}]"},
    )


def _expected(sc: Scenario) -> tuple[set[tuple[str, str]], set[str]]:
    kept = (sc.error_trace, sc.exception_event_trace)
    return {(t, name) for t in kept for name in sc.span_names[t]}, set(sc.log_bodies)


@pytest.mark.parametrize(
    "configs",
    [("otelcol-autoheal.yaml",), ("otelcol-autoheal.yaml", "otelcol-loadbalancing.yaml")],
    ids=["single", "loadbalancing"],
)
def test_queued_batches_survive_a_collector_crash(
    collector_binaries: Binaries, jaeger: Jaeger, tmp_path: Path, configs: Sequence[str]
) -> None:
    """Batches otel-autoheal refused are still delivered after the collector is SIGKILLed and restarted."""
    queue = tmp_path / "queue"
    sink = OtlpSink()
    sink.refuse(True)  # otel-autoheal restarting: every export answered UNAVAILABLE
    first = _start(collector_binaries, jaeger, tmp_path, sink, queue, configs)
    try:
        sc = send_scenario(first.grpc_endpoint)
        want_spans, want_logs = _expected(sc)

        def everything_offered() -> bool:
            first.process.check_alive()
            spans, logs = sink.offered()
            return {(s.trace_id, s.span.name) for s in spans} >= want_spans and {
                r.record.body.string_value for r in logs
            } >= want_logs

        # Offered once = dequeued by the exporter, which keeps it in the queue until it is acknowledged.
        wait_for(everything_offered, timeout=DEADLINE_S, what="every batch offered once", on_timeout=first.process.log_tail)
        assert not sink.spans() and not sink.logs()
        first.process.kill()
    finally:
        first.stop()

    sink.refuse(False)
    second = _start(collector_binaries, jaeger, tmp_path, sink, queue, configs)
    try:

        def everything_delivered() -> bool:
            second.process.check_alive()
            return {(s.trace_id, s.span.name) for s in sink.spans()} >= want_spans and {
                r.record.body.string_value for r in sink.logs()
            } >= want_logs

        wait_for(
            everything_delivered,
            timeout=DEADLINE_S,
            what="the queued batches from the restarted collector",
            on_timeout=second.process.log_tail,
        )
    finally:
        second.stop()
        sink.stop()
    assert not sink.trace_ids() & set(sc.ok_traces), "a successful trace reached otel-autoheal"
