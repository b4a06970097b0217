"""OpenTelemetry SDK set-up for MCP servers: providers, batch processors, OTLP exporters, flush at exit."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider, set_logger_provider

from . import _config
from ._exceptions import debug
from ._mcp_logging import LoggingBridge

__all__ = ["installed_logger_provider", "setup_otel", "shutdown"]

_lock = threading.Lock()
# What setup_otel installed: "tracer"/"logger" (ours, to flush and stop), "logger_provider" (the one
# in use, ours or the app's) and "handler" (the logging bridge).
_providers: dict[str, Any] = {}


def setup_otel(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    disabled: bool | None = None,
    log_level: int | str | None = None,
    source: str = "mcp",
    default_service_name: str = "mcp-server",
) -> bool:
    """Install tracer/logger providers with batch processors and OTLP exporters, once.

    Providers the application installed itself are kept. Returns False when disabled or on an
    internal failure (the server then runs uninstrumented).
    """
    with _lock:
        if _providers:
            return True
        try:
            settings = _config.resolve(
                source=source,
                default_service_name=default_service_name,
                service_name=service_name,
                service_version=service_version,
                endpoint=endpoint,
                protocol=protocol,
                headers=headers,
                disabled=disabled,
                log_level=log_level,
            )
            if settings.disabled:
                return False
            _install_providers(settings)
            return True
        except Exception as exc:
            debug("otel-autoheal: MCP telemetry setup failed: %r", exc)
            return False


def installed_logger_provider() -> Any:
    """The logger provider in use since :func:`setup_otel` (ours or the app's), else the global one."""
    return _providers.get("logger_provider") or get_logger_provider()


def _exporters(settings: _config.Settings) -> tuple[Any, Any]:
    timeout = max(1.0, settings.export_timeout * 5)
    if settings.protocol == _config.PROTOCOL_GRPC:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        insecure = not settings.grpc_endpoint.startswith("https://")
        headers = {k.lower(): v for k, v in settings.headers.items()}
        return (
            GrpcSpanExporter(endpoint=settings.grpc_endpoint, insecure=insecure, headers=headers, timeout=timeout),
            GrpcLogExporter(endpoint=settings.grpc_endpoint, insecure=insecure, headers=headers, timeout=timeout),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (
        OTLPSpanExporter(endpoint=settings.traces_endpoint, headers=settings.headers, timeout=timeout),
        OTLPLogExporter(endpoint=settings.logs_endpoint, headers=settings.headers, timeout=timeout),
    )


def _resource(settings: _config.Settings) -> Any:
    from opentelemetry.sdk.resources import Resource

    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    attributes: dict[str, Any] = _config.resource_attributes(settings, main_file)
    return Resource.create(attributes)


def _install_providers(settings: _config.Settings) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = _resource(settings)
    span_exporter, log_exporter = _exporters(settings)
    tracer_provider = trace.get_tracer_provider()
    if not isinstance(tracer_provider, TracerProvider):
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=1000))
        trace.set_tracer_provider(tracer_provider)
        _providers["tracer"] = tracer_provider
    logger_provider = get_logger_provider()
    if not isinstance(logger_provider, LoggerProvider):
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter, schedule_delay_millis=1000))
        set_logger_provider(logger_provider)
        _providers["logger"] = logger_provider
    _providers["logger_provider"] = logger_provider
    handler = LoggingBridge(logger_provider, level=settings.log_level)
    logging.getLogger().addHandler(handler)
    _providers["handler"] = handler
    atexit.register(shutdown)


def shutdown(timeout_millis: int = 5000) -> None:
    """Flush and stop what :func:`setup_otel` installed; safe to call more than once."""
    with _lock:
        handler = _providers.pop("handler", None)
        tracer_provider = _providers.pop("tracer", None)
        logger_provider = _providers.pop("logger", None)
    try:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
        if tracer_provider is not None:
            tracer_provider.force_flush(timeout_millis)
            tracer_provider.shutdown()
        if logger_provider is not None:
            logger_provider.force_flush(timeout_millis)
            logger_provider.shutdown()
    except Exception as exc:
        debug("otel-autoheal: MCP telemetry shutdown failed: %r", exc)
