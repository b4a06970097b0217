"""MCP server instrumentation (mcp 2.x): the tool's real exception on the tools/call span.

``MCPServer`` turns every tool exception into an ``isError`` result, so the SDK's own
``OpenTelemetryMiddleware`` only ever sees ``error.type=tool_error`` and no stack. We replace that
middleware with an equivalent one (``_mcp_middleware``: same span name, kind, attributes and
``_meta`` parent) that also records the exception captured inside ``MCPServer.call_tool``
(``_mcp_tools``), the tool arguments, and deliberate ``isError`` results (``_mcp_record``).
Keeping the SDK's middleware was not an option: it runs outside ours and overwrites
``error.type`` with ``tool_error`` after we set it. SDK set-up is ``_mcp_setup``, the logging
bridge ``_mcp_logging``, our uses of ``mcp`` internals ``_mcp_sdk``.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import debug
from ._mcp_middleware import ToolTelemetryMiddleware
from ._mcp_sdk import is_sdk_otel_middleware
from ._mcp_setup import setup_otel, shutdown
from ._mcp_tools import wrap_call_tool

__all__ = ["instrument_mcp", "setup_otel", "shutdown", "use_our_middleware"]


def use_our_middleware(middleware: list[Any]) -> bool:
    """Put our middleware in place of the SDK's (or first, when there is none); False if already there."""
    if any(isinstance(m, ToolTelemetryMiddleware) for m in middleware):
        return False
    ours = ToolTelemetryMiddleware()
    for i, m in enumerate(middleware):
        if is_sdk_otel_middleware(m):
            middleware[i] = ours
            return True
    middleware.insert(0, ours)
    return True


def instrument_mcp(server: Any, **options: Any) -> Any:
    """Instrument an ``MCPServer`` or low-level ``Server`` in place; returns it.

    Options are those of :func:`setup_otel`; the service name defaults to the server's name.
    Never raises: on failure the server runs uninstrumented.
    """
    try:
        options.setdefault("default_service_name", getattr(server, "name", None) or "mcp-server")
        if not setup_otel(**options):
            return server
        if not use_our_middleware(server.middleware):
            return server
        if hasattr(server, "_tool_manager") and hasattr(server, "call_tool"):
            wrap_call_tool(server)
    except Exception as exc:
        debug("otel-autoheal: cannot instrument MCP server: %r", exc)
    return server
