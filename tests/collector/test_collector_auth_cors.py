"""The auth overlays and CORS settings of otelcol-autoheal.yaml, on a running collector."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from collector_stack import Binaries, Collector, Jaeger, start_collector, wait_for
from otlp_sink import OtlpSink

INGEST_TOKEN = "collector-ingest-token-for-tests"
UPSTREAM_TOKEN = "autoheal-ingest-token-for-tests"
ORIGIN = "http://app.localhost:5173"


@pytest.fixture(scope="module")
def collector(
    collector_binaries: Binaries,
    jaeger: Jaeger,
    autoheal_sink: OtlpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Collector]:
    instance = start_collector(
        collector_binaries.otelcol,
        tmp_path_factory.mktemp("otelcol-auth"),
        autoheal_endpoint=autoheal_sink.endpoint,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        configs=(
            "otelcol-autoheal.yaml",
            "otelcol-autoheal-auth.yaml",
            "otelcol-autoheal-upstream-token.yaml",
        ),
        env={
            "OTELCOL_INGEST_TOKEN": INGEST_TOKEN,
            "AUTOHEAL_INGEST_TOKEN": UPSTREAM_TOKEN,
            "OTELCOL_CORS_ALLOWED_ORIGINS": f"[{ORIGIN}, https://*.example.test]",
        },
    )
    try:
        yield instance
    finally:
        instance.stop()


def _error_spans() -> tuple[str, list]:  # type: ignore[type-arg]
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("tests.collector").start_as_current_span("failing") as span:
        span.set_status(Status(StatusCode.ERROR, "boom"))
        trace_id = f"{span.get_span_context().trace_id:032x}"
    return trace_id, list(memory.get_finished_spans())


def test_grpc_without_token_is_refused(collector: Collector, autoheal_sink: OtlpSink) -> None:
    """An export without the bearer token fails and nothing of it is forwarded."""
    trace_id, spans = _error_spans()
    exporter = OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True, timeout=10)
    try:
        assert exporter.export(spans) == SpanExportResult.FAILURE
        wrong = OTLPSpanExporter(
            endpoint=collector.grpc_endpoint,
            insecure=True,
            timeout=10,
            headers={"authorization": "Bearer not-the-token"},
        )
        assert wrong.export(spans) == SpanExportResult.FAILURE
        wrong.shutdown()
    finally:
        exporter.shutdown()
    assert trace_id not in autoheal_sink.trace_ids()


def test_grpc_with_token_is_forwarded_with_upstream_token(
    collector: Collector, autoheal_sink: OtlpSink
) -> None:
    """With the ingest token the trace goes through, carrying otel-autoheal's own token upstream."""
    trace_id, spans = _error_spans()
    exporter = OTLPSpanExporter(
        endpoint=collector.grpc_endpoint,
        insecure=True,
        timeout=10,
        headers={"authorization": f"Bearer {INGEST_TOKEN}"},
    )
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    got = wait_for(
        lambda: autoheal_sink.spans(trace_id),
        timeout=90,
        what="the authenticated trace at the otel-autoheal stand-in",
        on_timeout=collector.process.log_tail,
    )
    assert got[0].metadata.get("authorization") == f"Bearer {UPSTREAM_TOKEN}"


def _http(method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


def test_http_without_token_is_401(collector: Collector) -> None:
    """The OTLP/HTTP receiver answers 401 to a request without the token and 200 with it."""
    url = f"{collector.http_endpoint}/v1/traces"
    body = b"{}"
    status, _ = _http("POST", url, {"Content-Type": "application/json"}, body)
    assert status == 401
    status, _ = _http(
        "POST", url, {"Content-Type": "application/json", "Authorization": f"Bearer {INGEST_TOKEN}"}, body
    )
    assert status == 200


def test_cors_preflight_allows_configured_origins_only(collector: Collector) -> None:
    """Browsers from OTELCOL_CORS_ALLOWED_ORIGINS may send (with Authorization); others get no CORS grant."""
    url = f"{collector.http_endpoint}/v1/traces"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, headers = _http("OPTIONS", url, {**preflight, "Origin": ORIGIN})
    assert status in (200, 204)
    assert headers.get("access-control-allow-origin") == ORIGIN
    assert "authorization" in headers.get("access-control-allow-headers", "").lower()
    status, headers = _http("OPTIONS", url, {**preflight, "Origin": "https://api.example.test"})
    assert headers.get("access-control-allow-origin") == "https://api.example.test"
    status, headers = _http("OPTIONS", url, {**preflight, "Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in headers
