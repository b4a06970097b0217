"""Everything we use of the ``mcp`` SDK beyond its documented API, in one place, each use guarded.

``mcp.server._otel.OpenTelemetryMiddleware`` is private: we import it only to find the SDK's
middleware in a server's chain and replace it. Should a release move or rename it, the import
fails quietly and the middleware is recognised by class name and package instead, so the server
stays instrumented. ``tests/instrumentation/test_instr_mcp_sdk.py`` fails on any ``mcp`` minor
release not listed in :data:`VERIFIED_MCP_MINORS`, so an upgrade is checked by the tests first.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SDK_MIDDLEWARE_MODULE",
    "SDK_MIDDLEWARE_NAME",
    "VERIFIED_MCP_MINORS",
    "is_sdk_otel_middleware",
    "sdk_otel_middleware_class",
    "unwrap_tool_exception",
]

#: ``mcp`` minor releases whose internals below were checked (extend after running the MCP tests).
VERIFIED_MCP_MINORS = ("2.3",)
#: Where the SDK's own telemetry middleware lives (a private module of ``mcp``).
SDK_MIDDLEWARE_MODULE = "mcp.server._otel"
SDK_MIDDLEWARE_NAME = "OpenTelemetryMiddleware"


def sdk_otel_middleware_class() -> type[Any] | None:
    """The SDK's ``OpenTelemetryMiddleware`` class, or None when this ``mcp`` has none where we look."""
    try:
        from mcp.server._otel import OpenTelemetryMiddleware
    except Exception:  # ImportError, or whatever a reorganised private module raises on import
        return None
    return OpenTelemetryMiddleware if isinstance(OpenTelemetryMiddleware, type) else None


def is_sdk_otel_middleware(middleware: object) -> bool:
    """Whether ``middleware`` is the SDK's own telemetry middleware (the one ours replaces)."""
    cls = sdk_otel_middleware_class()
    if cls is not None:
        return isinstance(middleware, cls)
    # Fallback when the private import fails: same class name, defined inside the mcp package.
    kind = type(middleware)
    return kind.__name__ == SDK_MIDDLEWARE_NAME and kind.__module__.split(".")[0] == "mcp"


def unwrap_tool_exception(exc: BaseException) -> BaseException | None:
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
