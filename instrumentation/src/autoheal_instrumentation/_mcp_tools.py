"""The tool wrapper: catches a tool's exception before ``MCPServer`` turns it into an ``isError`` result."""

from __future__ import annotations

from typing import Any

from ._exceptions import mark_seen
from ._mcp_record import call_state
from ._mcp_sdk import unwrap_tool_exception

__all__ = ["wrap_call_tool"]


def wrap_call_tool(server: Any) -> None:
    """Wrap ``server.call_tool`` so the current tools/call learns the tool's real exception."""
    original = server.call_tool

    async def call_tool(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await original(name, arguments, context)
        except Exception as exc:
            state = call_state.get()
            if state is not None and state.exception is None:
                real = unwrap_tool_exception(exc)
                if real is not None:
                    state.exception = real
                    mark_seen(exc, with_causes=True)
            raise

    server.call_tool = call_tool
