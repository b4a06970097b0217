"""Unit tests for MCP argument capture and exception unwrapping."""

from __future__ import annotations

import json

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

from autoheal_instrumentation._mcp_record import arguments_json
from autoheal_instrumentation._mcp_sdk import unwrap_tool_exception


def test_arguments_are_scrubbed_and_capped() -> None:
    """Tool arguments become sorted JSON with secrets redacted, capped at 4 KiB."""
    text = arguments_json({"name": "divide", "arguments": {"token": "abc", "b": 0, "url": "https://u:p@h/"}})
    assert text is not None
    assert json.loads(text) == {"b": 0, "token": "[redacted:token]", "url": "https://u:[redacted:url_password]@h/"}
    big = arguments_json({"arguments": {"blob": "x" * 10_000}})
    assert big is not None and len(big) < 4200 and big.endswith("[truncated]")
    assert arguments_json({"name": "noargs"}) is None


def test_unexpected_tool_error_is_unwrapped_to_the_real_exception() -> None:
    """The SDK's UnexpectedToolError wrapper gives way to the tool's own exception; a ToolError is deliberate."""
    try:
        try:
            _ = 1 / 0
        except ZeroDivisionError as inner:
            raise UnexpectedToolError("Error executing tool divide") from inner
    except UnexpectedToolError as wrapper:
        real = unwrap_tool_exception(wrapper)
    assert isinstance(real, ZeroDivisionError)
    assert unwrap_tool_exception(ToolError("bad input")) is None
    plain = ValueError("x")
    assert unwrap_tool_exception(plain) is plain
