"""The scale-out overlay: error traces and logs spread over several otel-autoheal instances by trace id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector_stack import Binaries, Jaeger, start_collector, wait_for
from otlp_sink import OtlpSink

TRACES = 20


@pytest.fixture
def backends() -> Iterator[list[OtlpSink]]:
    sinks = [OtlpSink(), OtlpSink()]
    try:
        yield sinks
    finally:
        for sink in sinks:
            sink.stop()


def _send_error_traces(endpoint: str) -> list[str]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
    )
    tracer, logger = tracer_provider.get_tracer("lb"), logger_provider.get_logger("lb")
    ids = []
    for i in range(TRACES):
        with tracer.start_as_current_span(f"job-{i}") as root:
            ids.append(f"{root.get_span_context().trace_id:032x}")
            with tracer.start_as_current_span("step"):
                logger.emit(body=f"step of job {i}", severity_number=SeverityNumber.INFO)
            root.set_status(Status(StatusCode.ERROR, "job failed"))
    logger.emit(body="no trace here", severity_number=SeverityNumber.INFO)
    assert tracer_provider.force_flush(30_000) and logger_provider.force_flush(30_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    return ids


def test_each_trace_and_its_logs_reach_one_instance(
    collector_binaries: Binaries, jaeger: Jaeger, backends: list[OtlpSink], tmp_path: Path
) -> None:
    """Every error trace arrives whole at exactly one backend, together with its log records."""
    collector = start_collector(
        collector_binaries.otelcol,
        tmp_path,
        autoheal_endpoint="127.0.0.1:1",  # replaced by the overlay; must not be used
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        configs=("otelcol-autoheal.yaml", "otelcol-loadbalancing.yaml"),
        env={"AUTOHEAL_BACKENDS": "[" + ", ".join(b.endpoint for b in backends) + "]"},
    )
    try:
        ids = _send_error_traces(collector.grpc_endpoint)

        def complete() -> bool:
            collector.process.check_alive()
            spans = sum(len(b.spans()) for b in backends)
            logs = sum(len(b.logs()) for b in backends)
            return spans >= 2 * TRACES and logs >= TRACES + 1

        wait_for(complete, timeout=90, what="all spans and logs at the backends", on_timeout=collector.process.log_tail)
    finally:
        collector.stop()
    for trace_id in ids:
        holders = [i for i, b in enumerate(backends) if b.spans(trace_id)]
        assert len(holders) == 1, f"trace {trace_id} split over backends {holders}"
        (home,) = holders
        assert len(backends[home].spans(trace_id)) == 2
        assert len(backends[home].logs(trace_id)) == 1, f"the log of {trace_id} went elsewhere"
    assert all(b.trace_ids() for b in backends), "one backend got nothing: no load balancing"
    traceless = [r for b in backends for r in b.logs() if r.record.body.string_value == "no trace here"]
    assert len(traceless) == 1
