"""The server middleware that replaces the SDK's: one SERVER span per inbound message.

Same span name, kind, attributes and ``_meta`` parent as the SDK's ``OpenTelemetryMiddleware``,
plus the tool's real exception, its arguments and deliberate ``isError`` results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, StatusCode

from ._exceptions import debug
from ._mcp_record import (
    SCOPE_NAME,
    CallState,
    arguments_json,
    call_state,
    is_error_result,
    record_exception,
    record_tool_error,
)
from ._version import version

__all__ = ["ToolTelemetryMiddleware"]

_INVALID_PARAMS = "-32602"


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


def _span_attributes(ctx: Any, target: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"mcp.method.name": ctx.method, "mcp.protocol.version": ctx.protocol_version}
    if ctx.request_id is not None:
        attributes["jsonrpc.request.id"] = str(ctx.request_id)
    if ctx.method == "tools/call":
        attributes["gen_ai.operation.name"] = "execute_tool"
        if target is not None:
            attributes["gen_ai.tool.name"] = target
        arguments = arguments_json(ctx.params)
        if arguments is not None:
            attributes["gen_ai.tool.call.arguments"] = arguments
    elif ctx.method == "prompts/get" and target is not None:
        attributes["gen_ai.prompt.name"] = target
    return attributes


class ToolTelemetryMiddleware:
    """Server middleware: one SERVER span per inbound message, tool failures recorded in full."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer(SCOPE_NAME, version())

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        params = ctx.params
        name = params.get("name") if params else None
        target = name if isinstance(name, str) else None
        with self._tracer.start_as_current_span(
            f"{ctx.method} {target}" if target else ctx.method,
            kind=SpanKind.SERVER,
            attributes=_span_attributes(ctx, target),
            context=_parent_context(ctx.meta),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            state = CallState(target)
            result = await self._call(span, ctx, call_next, state)
            if ctx.method == "tools/call" and is_error_result(result):
                try:
                    _tool_error(span, state, target, result)
                except Exception as inner:
                    debug("otel-autoheal: recording failed: %r", inner)
            return result

    @staticmethod
    async def _call(span: Span, ctx: Any, call_next: Callable[[Any], Awaitable[Any]], state: CallState) -> Any:
        """``call_next(ctx)`` with ``state`` current; a raised error is put on the span, then re-raised."""
        from mcp.shared.exceptions import MCPError
        from pydantic import ValidationError

        token = call_state.set(state)
        try:
            return await call_next(ctx)
        except MCPError as exc:
            code = str(exc.error.code)
            span.set_attributes({"error.type": code, "rpc.response.status_code": code})
            span.set_status(StatusCode.ERROR, exc.error.message)
            raise
        except ValidationError:
            # As the SDK does: the wire response is sanitised; pydantic messages carry client input.
            span.set_attributes({"error.type": _INVALID_PARAMS, "rpc.response.status_code": _INVALID_PARAMS})
            span.set_status(StatusCode.ERROR, "Invalid request parameters")
            raise
        except Exception as exc:
            try:
                record_exception(span, exc, state.tool)
            except Exception as inner:
                debug("otel-autoheal: recording failed: %r", inner)
            raise
        finally:
            call_state.reset(token)


def _tool_error(span: Span, state: CallState, target: str | None, result: Any) -> None:
    if state.exception is not None:
        record_exception(span, state.exception, target)
    else:
        record_tool_error(span, target, result)
