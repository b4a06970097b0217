"""The real OTel Python SDK exporters (gRPC and HTTP) against the real service."""

from __future__ import annotations

import logging

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def _providers(autoheal, protocol: str, service: str = "shop"):
    resource = Resource.create({"service.name": service, "service.version": "1.2.3", "service.instance.id": "i-1"})
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=autoheal.grpc_endpoint, insecure=True)
        log_exporter = OTLPLogExporter(endpoint=autoheal.grpc_endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=f"{autoheal.http_endpoint}/v1/traces")
        log_exporter = OTLPLogExporter(endpoint=f"{autoheal.http_endpoint}/v1/logs")
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    return tracer_provider, logger_provider


def _checkout(cart_id: int) -> None:
    _charge(cart_id)


def _charge(cart_id: int) -> None:
    raise ValueError(f"card declined for cart {cart_id}")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_exception_with_logs_becomes_one_issue(autoheal, protocol):
    """An exception recorded by the SDK, with logs before it, becomes one issue showing those logs in order."""
    tracer_provider, logger_provider = _providers(autoheal, protocol)
    tracer = tracer_provider.get_tracer("test")
    otel_logger = logger_provider.get_logger("test")
    for cart in (101, 202):
        with pytest.raises(ValueError), tracer.start_as_current_span("checkout") as span:
            span.set_attribute("http.route", "/cart/{id}/checkout")
            for step in ("loading cart", "reserving stock", "charging card"):
                otel_logger.emit(body=f"{step} {cart}", severity_number=SeverityNumber.INFO, severity_text="INFO")
            _checkout(cart)
    # An unrelated trace with its own logs must not leak into the issue.
    with tracer.start_as_current_span("other"):
        otel_logger.emit(body="unrelated line", severity_number=SeverityNumber.INFO, severity_text="INFO")
    tracer_provider.shutdown()
    logger_provider.shutdown()

    issues = autoheal.wait_for_issues(lambda i: i and i[0]["count"] == 2)
    assert len(issues) == 1
    issue = issues[0]
    assert issue["title"] == "[autoheal] ValueError: card declined for cart <num>"
    body = issue["body"]
    assert body.index("loading cart") < body.index("reserving stock") < body.index("charging card")
    assert "unrelated line" not in body
    assert "_charge" in body and "/cart/{id}/checkout" in body.replace("\\", "")
    assert f"<!-- autoheal:fingerprint={issue['fingerprint']} -->" in body
    assert len(issue["trace_ids"]) == 2
    logging.getLogger(__name__).debug(body)
