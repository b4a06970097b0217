"""otelcol-existing-pipeline-snippet.yaml: the existing pipeline keeps everything, otel-autoheal gets errors."""

from __future__ import annotations

from pathlib import Path

from collector_stack import Binaries, Jaeger, start_collector, wait_for
from otlp_sink import OtlpSink
from scenario import send_scenario


def test_snippet_adds_autoheal_without_changing_the_existing_pipeline(
    collector_binaries: Binaries, jaeger: Jaeger, autoheal_sink: OtlpSink, tmp_path: Path
) -> None:
    """The existing backend (Jaeger over OTLP/HTTP here) still gets every trace; otel-autoheal gets errors and logs."""
    collector = start_collector(
        collector_binaries.otelcol,
        tmp_path,
        autoheal_endpoint=autoheal_sink.endpoint,
        jaeger_endpoint="127.0.0.1:1",  # the snippet has no Jaeger exporter
        configs=("otelcol-existing-pipeline-snippet.yaml",),
        env={"EXISTING_BACKEND_URL": jaeger.otlp_http_endpoint},
    )
    try:
        sent = send_scenario(collector.grpc_endpoint)
        everything = [sent.error_trace, sent.exception_event_trace, *sent.ok_traces]
        wait_for(
            lambda: all(jaeger.get_trace(t)[0] == 200 for t in everything),
            timeout=90,
            what="every trace at the existing backend",
            on_timeout=collector.process.log_tail,
        )
        wanted = {sent.error_trace, sent.exception_event_trace}
        wait_for(
            lambda: wanted <= autoheal_sink.trace_ids()
            and set(sent.log_bodies) <= {r.record.body.string_value for r in autoheal_sink.logs()},
            timeout=90,
            what="error traces and all logs at the otel-autoheal stand-in",
            on_timeout=collector.process.log_tail,
        )
        wait_for(
            lambda: collector.traces_not_sampled() >= len(sent.ok_traces),
            timeout=90,
            what="the tail sampler to drop the successful traces",
            on_timeout=collector.metrics_text,
        )
        assert not set(sent.ok_traces) & autoheal_sink.trace_ids()
    finally:
        collector.stop()
