"""MCP server instrumentation (mcp 2.x): the tool's real exception on the tools/call span.

``MCPServer`` turns every tool exception into an ``isError`` result, so the SDK's own
``OpenTelemetryMiddleware`` only ever sees ``error.type=tool_error`` and no stack. We replace that
middleware with an equivalent one (same span name, kind, attributes and ``_meta`` parent) that
also records the exception captured inside ``MCPServer.call_tool``, the tool arguments, and
deliberate ``isError`` results. Keeping the SDK's middleware was not an option: it runs outside
ours and overwrites ``error.type`` with ``tool_error`` after we set it.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber, get_logger_provider, set_logger_provider
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, StatusCode

from . import _config
from ._scrub import scrub_text, scrub_value
from ._source_context import source_context_attributes, vcs_attributes

__all__ = ["instrument_mcp", "setup_otel", "shutdown"]

_log = logging.getLogger("autoheal_instrumentation")
_TRACER_NAME = "autoheal_instrumentation.mcp"
_VERSION = "0.1.0"
_MAX_ARGUMENTS = 4096
_MAX_TEXT = 4096

_lock = threading.Lock()
_providers: dict[str, Any] = {}


class _CallState:
    """What the tool wrapper learnt during one tools/call, read back by the middleware."""

    __slots__ = ("exception", "tool")

    def __init__(self, tool: str | None) -> None:
        self.tool = tool
        self.exception: BaseException | None = None


_call_state: contextvars.ContextVar[_CallState | None] = contextvars.ContextVar("autoheal_mcp_call", default=None)


def _exc_type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ in ("builtins", "__builtin__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _exception_attributes(exc: BaseException) -> dict[str, str]:
    try:
        stack = "".join(traceback.format_exception(exc))
    except Exception:
        stack = ""
    return {
        "exception.type": _exc_type_name(exc),
        "exception.message": scrub_text(str(exc)),
        "exception.stacktrace": scrub_text(stack),
    }


def _mark_seen(exc: BaseException | None) -> None:
    while exc is not None:
        try:
            exc.__autoheal_seen__ = True  # type: ignore[attr-defined]
        except Exception:
            return
        exc = exc.__cause__ or exc.__context__


# -- SDK setup -------------------------------------------------------------------------------------
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
            _log.debug("otel-autoheal: MCP telemetry setup failed: %r", exc)
            return False


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


def _install_providers(settings: _config.Settings) -> None:
    import platform

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    attributes: dict[str, Any] = {**vcs_attributes(main_file, settings.resource_attributes), **settings.resource_attributes}
    attributes["service.name"] = settings.service_name
    if settings.service_version:
        attributes["service.version"] = settings.service_version
    attributes["process.runtime.version"] = platform.python_version()
    resource = Resource.create(attributes)

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
    handler = _LoggingBridge(logger_provider, level=settings.log_level)
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
        _log.debug("otel-autoheal: MCP telemetry shutdown failed: %r", exc)


_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}
_SKIP_LOGGERS = ("opentelemetry", "autoheal_instrumentation", "urllib3", "httpx", "httpcore")


class _LoggingBridge(logging.Handler):
    """stdlib logging -> OTel log records with the current span context.

    Own small handler: the SDK's LoggingHandler is deprecated and its replacement lives in an
    extra package. An exception we already recorded for a tool is not sent a second time.
    """

    def __init__(self, provider: Any, level: int) -> None:
        super().__init__(level=level)
        self._provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_SKIP_LOGGERS):
            return
        try:
            attributes: dict[str, Any] = {
                "logger.name": record.name,
                "code.file.path": record.pathname,
                "code.line.number": record.lineno,
            }
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and not getattr(exc, "__autoheal_seen__", False):
                attributes.update(_exception_attributes(exc))
            severity = _SEVERITY.get(record.levelno - record.levelno % 10, SeverityNumber.INFO)
            self._provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                context=otel_context.get_current(),
                severity_number=severity,
                severity_text=record.levelname,
                body=scrub_text(record.getMessage()),
                attributes=attributes,
            )
        except Exception:
            pass  # never let telemetry break the host's logging

    def flush(self) -> None:
        pass


# -- recording -------------------------------------------------------------------------------------
def _emit_log(severity: SeverityNumber, body: str, attributes: dict[str, Any], event_name: str | None) -> None:
    provider = _providers.get("logger_provider") or get_logger_provider()
    now = time.time_ns()
    provider.get_logger(_TRACER_NAME, _VERSION).emit(
        timestamp=now,
        observed_timestamp=now,
        context=otel_context.get_current(),
        severity_number=severity,
        severity_text=severity.name,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )


def _record_exception(span: Span, exc: BaseException, tool: str | None) -> None:
    attrs = _exception_attributes(exc)
    # Our type name/message/stack replace the SDK's (same format, but scrubbed).
    span.record_exception(exc, attributes={**attrs, **source_context_attributes(exc, scrub_text)})
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(StatusCode.ERROR, f"{type(exc).__qualname__}: {attrs['exception.message']}"[:1024])
    log_attrs: dict[str, Any] = {**attrs, "error.type": type(exc).__qualname__}
    if tool:
        log_attrs["gen_ai.tool.name"] = tool
    _emit_log(SeverityNumber.ERROR, f"{type(exc).__qualname__}: {attrs['exception.message']}", log_attrs, "exception")
    _mark_seen(exc)


def _result_text(result: Any) -> str:
    content = getattr(result, "content", None)
    if content is None and isinstance(result, Mapping):
        content = result.get("content")
    parts = []
    for item in content or ():
        text = getattr(item, "text", None)
        if text is None and isinstance(item, Mapping):
            text = item.get("text")
        if isinstance(text, str):
            parts.append(text)
    return scrub_text("\n".join(parts))[:_MAX_TEXT]


def _is_error_result(result: Any) -> bool:
    if isinstance(result, Mapping):
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


def _arguments_json(params: Mapping[str, Any] | None) -> str | None:
    if not params:
        return None
    arguments = params.get("arguments")
    if arguments is None:
        return None
    try:
        text = json.dumps(scrub_value(arguments), default=str, ensure_ascii=False, sort_keys=True)
    except Exception:
        text = scrub_text(repr(arguments))
    if len(text) > _MAX_ARGUMENTS:
        text = text[:_MAX_ARGUMENTS] + "…[truncated]"
    return text


def _parent_context(meta: Any) -> Any:
    """The caller's context from ``params._meta`` (W3C), or None to use the ambient one."""
    if not meta:
        return None
    try:
        carrier = dict(meta) if not isinstance(meta, dict) else meta
        ctx = extract(carrier)
    except (TypeError, ValueError):
        return None
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


class ToolTelemetryMiddleware:
    """Server middleware: one SERVER span per inbound message, tool failures recorded in full."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer(_TRACER_NAME, _VERSION)

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        from mcp.shared.exceptions import MCPError
        from pydantic import ValidationError

        params = ctx.params
        name = params.get("name") if params else None
        target = name if isinstance(name, str) else None
        attributes: dict[str, Any] = {"mcp.method.name": ctx.method, "mcp.protocol.version": ctx.protocol_version}
        if ctx.request_id is not None:
            attributes["jsonrpc.request.id"] = str(ctx.request_id)
        is_tool_call = ctx.method == "tools/call"
        if is_tool_call:
            attributes["gen_ai.operation.name"] = "execute_tool"
            if target is not None:
                attributes["gen_ai.tool.name"] = target
            arguments = _arguments_json(params)
            if arguments is not None:
                attributes["gen_ai.tool.call.arguments"] = arguments
        elif ctx.method == "prompts/get" and target is not None:
            attributes["gen_ai.prompt.name"] = target

        with self._tracer.start_as_current_span(
            f"{ctx.method} {target}" if target else ctx.method,
            kind=SpanKind.SERVER,
            attributes=attributes,
            context=_parent_context(ctx.meta),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            state = _CallState(target)
            token = _call_state.set(state)
            try:
                result = await call_next(ctx)
            except MCPError as exc:
                code = str(exc.error.code)
                span.set_attributes({"error.type": code, "rpc.response.status_code": code})
                span.set_status(StatusCode.ERROR, exc.error.message)
                raise
            except ValidationError:
                span.set_attributes({"error.type": "-32602", "rpc.response.status_code": "-32602"})
                span.set_status(StatusCode.ERROR, "Invalid request parameters")
                raise
            except Exception as exc:
                try:
                    _record_exception(span, exc, target)
                except Exception as inner:
                    _log.debug("otel-autoheal: recording failed: %r", inner)
                raise
            finally:
                _call_state.reset(token)
            if is_tool_call and _is_error_result(result):
                try:
                    self._tool_error(span, state, target, result)
                except Exception as inner:
                    _log.debug("otel-autoheal: recording failed: %r", inner)
            return result

    @staticmethod
    def _tool_error(span: Span, state: _CallState, target: str | None, result: Any) -> None:
        if state.exception is not None:
            _record_exception(span, state.exception, target)
            return
        # Returned on purpose (or a ToolError raised on purpose): an error without a stack.
        text = _result_text(result)
        span.set_attribute("error.type", "tool_error")
        span.set_status(StatusCode.ERROR, text[:1024] or "tool_error")
        attrs: dict[str, Any] = {
            "error.type": "tool_error",
            "exception.type": "tool_error",
            "exception.message": text or f"tool {target!r} returned isError",
        }
        if target:
            attrs["gen_ai.tool.name"] = target
        _emit_log(SeverityNumber.WARN, f"Tool {target!r} returned an error: {text}", attrs, "mcp.tool.error")


def _unwrap_tool_exception(exc: BaseException) -> BaseException | None:
    """The exception worth reporting, or None for a deliberate ToolError."""
    try:
        from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
    except ImportError:
        return exc
    if isinstance(exc, UnexpectedToolError):
        inner = exc.__cause__
        while isinstance(inner, UnexpectedToolError) and inner.__cause__ is not None:
            inner = inner.__cause__
        return inner or exc
    if isinstance(exc, ToolError):
        return None
    return exc


def _wrap_call_tool(server: Any) -> None:
    original = server.call_tool

    async def call_tool(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await original(name, arguments, context)
        except Exception as exc:
            state = _call_state.get()
            if state is not None and state.exception is None:
                real = _unwrap_tool_exception(exc)
                if real is not None:
                    state.exception = real
                    _mark_seen(exc)
            raise

    server.call_tool = call_tool


def instrument_mcp(server: Any, **options: Any) -> Any:
    """Instrument an ``MCPServer`` or low-level ``Server`` in place; returns it.

    Options are those of :func:`setup_otel`; the service name defaults to the server's name.
    Never raises: on failure the server runs uninstrumented.
    """
    try:
        options.setdefault("default_service_name", getattr(server, "name", None) or "mcp-server")
        if not setup_otel(**options):
            return server
        middleware = server.middleware
        if any(isinstance(m, ToolTelemetryMiddleware) for m in middleware):
            return server
        sdk_middleware: Any = None
        try:
            from mcp.server._otel import OpenTelemetryMiddleware as sdk_middleware
        except ImportError:
            pass
        ours = ToolTelemetryMiddleware()
        replaced = False
        for i, m in enumerate(middleware):
            if sdk_middleware is not None and isinstance(m, sdk_middleware):
                middleware[i] = ours
                replaced = True
                break
        if not replaced:
            middleware.insert(0, ours)
        if hasattr(server, "_tool_manager") and hasattr(server, "call_tool"):
            _wrap_call_tool(server)
    except Exception as exc:
        _log.debug("otel-autoheal: cannot instrument MCP server: %r", exc)
    return server
