"""Send a fixed mix of error and successful traces plus logs with the real OTel Python SDK."""

from __future__ import annotations

import dataclasses

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

__all__ = ["SECRETS", "Scenario", "send_scenario"]

# Built at run time so that no token-shaped literal sits in the repository.
SECRETS = {
    "github": "ghp_" + "A1b2C3d4" * 4 + "E5f6",
    "aws": "AKIA" + "IOSFODNN7EXAMPL1",
    "jwt": "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".c2lnbmF0dXJlLXZhbHVlLWhlcmU",
    "card": "4111 1111 1111 1111",
    "password": "hunter2-correct-horse",
}


@dataclasses.dataclass
class Scenario:
    """Hex trace ids of what was sent, and the span names per trace."""

    error_trace: str = ""
    exception_event_trace: str = ""
    ok_traces: list[str] = dataclasses.field(default_factory=list)
    span_names: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    log_bodies: dict[str, str] = dataclasses.field(default_factory=dict)  # body -> trace id or ""


class _ApiError(RuntimeError):
    pass


def send_scenario(endpoint: str, *, headers: dict[str, str] | None = None, ok_traces: int = 3) -> Scenario:
    """Export the scenario to the OTLP/gRPC ``endpoint`` ("host:port") and flush before returning."""
    resource = Resource.create(
        {"service.name": "collector-test-cli", "autoheal.source": "cli", "deployment.environment": "test"}
    )
    span_exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    log_exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, headers=headers)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("tests.collector")
    logger = logger_provider.get_logger("tests.collector")
    sc = Scenario()

    def log(body: str, trace_id: str, **attributes: str) -> None:
        logger.emit(body=body, severity_number=SeverityNumber.INFO, attributes=attributes or None)
        sc.log_bodies[body] = trace_id

    try:
        # A failed CLI run: two successful steps, then an exception that escapes its span.
        with tracer.start_as_current_span("cli.run", attributes={"cli.command": "deploy"}) as root:
            tid = f"{root.get_span_context().trace_id:032x}"
            sc.error_trace = tid
            with tracer.start_as_current_span(
                "load-config",
                attributes={
                    "db.password": SECRETS["password"],
                    "config.note": f"loaded key {SECRETS['aws']} from env",
                    "http.request.header.x-session": f"jwt {SECRETS['jwt']}",
                },
            ):
                log("config loaded", tid, source_file="deploy.toml")
            try:
                with tracer.start_as_current_span("call-api", attributes={"url.full": "https://api.test/x"}):
                    log(
                        "calling api",
                        tid,
                        **{"payment.card": f"card {SECRETS['card']}", "gh": f"token={SECRETS['github']}"},
                    )
                    raise _ApiError(f"401 for token {SECRETS['github']}")
            except _ApiError as exc:
                logger.emit(
                    body="deploy failed",
                    severity_number=SeverityNumber.ERROR,
                    exception=exc,
                )
                sc.log_bodies["deploy failed"] = tid
                root.set_status(Status(StatusCode.ERROR, "deploy failed"))
        sc.span_names[tid] = {"cli.run", "load-config", "call-api"}

        # A handled exception: an exception event on a span whose status stays unset.
        with tracer.start_as_current_span("mcp.tools/call lookup") as root:
            tid = f"{root.get_span_context().trace_id:032x}"
            sc.exception_event_trace = tid
            with tracer.start_as_current_span("lookup.cache") as child:
                child.record_exception(KeyError("user-42"))
        sc.span_names[tid] = {"mcp.tools/call lookup", "lookup.cache"}

        # Successful runs, which must reach Jaeger only.
        for i in range(ok_traces):
            with tracer.start_as_current_span("cli.run", attributes={"cli.command": f"status-{i}"}) as root:
                tid = f"{root.get_span_context().trace_id:032x}"
                sc.ok_traces.append(tid)
                with tracer.start_as_current_span("read-state"):
                    log(f"status ok {i}", tid)
            sc.span_names[tid] = {"cli.run", "read-state"}

        # A log record outside any trace.
        log("process started", "")
    finally:
        if not tracer_provider.force_flush(30_000) or not logger_provider.force_flush(30_000):
            raise AssertionError(f"the OTel SDK could not flush to {endpoint}")
        tracer_provider.shutdown()
        logger_provider.shutdown()
    return sc
