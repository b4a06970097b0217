"""Recording a tools/call: the tool's exception or deliberate error on its span, plus a log record.

The tool wrapper (``_mcp_tools``) and the middleware (``_mcp_middleware``) meet through
:data:`call_state`: the wrapper notes the exception ``MCPServer`` is about to turn into an
``isError`` result, the middleware records it once the call returns.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import Span, StatusCode

from ._exceptions import MAX_STATUS, exception_attributes, mark_seen, summary
from ._mcp_setup import installed_logger_provider
from ._scrub import scrub_text, scrub_value
from ._source_context import source_context_attributes
from ._version import version

__all__ = [
    "SCOPE_NAME",
    "CallState",
    "arguments_json",
    "call_state",
    "is_error_result",
    "record_exception",
    "record_tool_error",
]

#: Instrumentation scope of our spans and log records.
SCOPE_NAME = "autoheal_instrumentation.mcp"
_MAX_ARGUMENTS = 4096
_MAX_TEXT = 4096


class CallState:
    """What the tool wrapper learnt during one tools/call, read back by the middleware."""

    __slots__ = ("exception", "tool")

    def __init__(self, tool: str | None) -> None:
        self.tool = tool
        self.exception: BaseException | None = None


call_state: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("autoheal_mcp_call", default=None)


def _emit_log(severity: SeverityNumber, body: str, attributes: dict[str, Any], event_name: str | None) -> None:
    now = time.time_ns()
    installed_logger_provider().get_logger(SCOPE_NAME, version()).emit(
        timestamp=now,
        observed_timestamp=now,
        context=otel_context.get_current(),
        severity_number=severity,
        severity_text=severity.name,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )


def record_exception(span: Span, exc: BaseException, tool: str | None) -> None:
    """``exc`` on ``span`` (event, ``error.type``, status) and as an ERROR log record; marked as seen."""
    attrs = exception_attributes(exc)
    text = summary(exc, attrs["exception.message"])
    # Our type name/message/stack replace the SDK's (same format, but scrubbed).
    span.record_exception(exc, attributes={**attrs, **source_context_attributes(exc, scrub_text)})
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(StatusCode.ERROR, text[:MAX_STATUS])
    log_attrs: dict[str, Any] = {**attrs, "error.type": type(exc).__qualname__}
    if tool:
        log_attrs["gen_ai.tool.name"] = tool
    _emit_log(SeverityNumber.ERROR, text, log_attrs, "exception")
    mark_seen(exc, with_causes=True)


def record_tool_error(span: Span, tool: str | None, result: Any) -> None:
    """An ``isError`` result returned (or a ToolError raised) on purpose: an error without a stack."""
    text = _result_text(result)
    span.set_attribute("error.type", "tool_error")
    span.set_status(StatusCode.ERROR, text[:MAX_STATUS] or "tool_error")
    attrs: dict[str, Any] = {
        "error.type": "tool_error",
        "exception.type": "tool_error",
        "exception.message": text or f"tool {tool!r} returned isError",
    }
    if tool:
        attrs["gen_ai.tool.name"] = tool
    _emit_log(SeverityNumber.WARN, f"Tool {tool!r} returned an error: {text}", attrs, "mcp.tool.error")


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


def is_error_result(result: Any) -> bool:
    """Whether a tools/call result reaches the client as an error (``isError``)."""
    if isinstance(result, Mapping):
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


def arguments_json(params: Mapping[str, Any] | None) -> str | None:
    """The call's arguments as sorted, scrubbed JSON capped at 4 KiB, or None when there are none."""
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
