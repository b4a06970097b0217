"""What the MCP instrumentation uses of mcp internals, checked on the installed mcp (a new release fails here first)."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from mcp.server.mcpserver import MCPServer

from autoheal_instrumentation import _mcp, _mcp_sdk
from autoheal_instrumentation._mcp_middleware import ToolTelemetryMiddleware

PRIVATE = f"{_mcp_sdk.SDK_MIDDLEWARE_MODULE}.{_mcp_sdk.SDK_MIDDLEWARE_NAME}"


@pytest.fixture
def server() -> Iterator[MCPServer]:
    # MCPServer() configures the root logger; this process's logging is put back afterwards.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield MCPServer("probe")
    root.handlers[:] = handlers
    root.setLevel(level)


def test_installed_mcp_release_was_verified() -> None:
    """The installed mcp is a minor release our uses of its internals were checked on; a newer one fails loudly."""
    installed = version("mcp")
    minor = ".".join(installed.split(".")[:2])
    assert minor in _mcp_sdk.VERIFIED_MCP_MINORS, (
        f"mcp {installed} is installed; autoheal_instrumentation uses mcp internals ({PRIVATE}, "
        f"MCPServer._tool_manager, MCPServer.call_tool(name, arguments, context)) verified on mcp "
        f"{', '.join(_mcp_sdk.VERIFIED_MCP_MINORS)} only. Run tests/instrumentation/test_instr_mcp*.py "
        f"against it, then add {minor!r} to VERIFIED_MCP_MINORS in _mcp_sdk.py."
    )


def test_private_sdk_middleware_is_where_we_import_it(server: MCPServer) -> None:
    """mcp.server._otel.OpenTelemetryMiddleware imports, and a new MCPServer's chain holds one."""
    cls = _mcp_sdk.sdk_otel_middleware_class()
    assert cls is not None, f"{PRIVATE} no longer imports on mcp {version('mcp')}"
    assert cls.__name__ == _mcp_sdk.SDK_MIDDLEWARE_NAME
    assert sum(isinstance(m, cls) for m in server.middleware) == 1, server.middleware


def test_mcpserver_internals_the_tool_wrapper_relies_on(server: MCPServer) -> None:
    """MCPServer still has _tool_manager and an async call_tool(name, arguments, context) to wrap."""
    assert hasattr(server, "_tool_manager"), f"MCPServer._tool_manager is gone on mcp {version('mcp')}"
    assert inspect.iscoroutinefunction(server.call_tool)
    assert list(inspect.signature(server.call_tool).parameters)[:3] == ["name", "arguments", "context"]
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

    assert issubclass(UnexpectedToolError, Exception) and issubclass(ToolError, Exception)


def test_our_middleware_takes_the_sdks_place(server: MCPServer) -> None:
    """The SDK's middleware is replaced in place (same position, chain length kept), once."""
    chain = server.middleware
    position = next(i for i, m in enumerate(chain) if _mcp_sdk.is_sdk_otel_middleware(m))
    length = len(chain)
    assert _mcp.use_our_middleware(chain)
    assert isinstance(chain[position], ToolTelemetryMiddleware)
    assert len(chain) == length
    assert not any(_mcp_sdk.is_sdk_otel_middleware(m) for m in chain)
    assert not _mcp.use_our_middleware(chain)
    assert sum(isinstance(m, ToolTelemetryMiddleware) for m in chain) == 1


def test_sdk_middleware_is_still_replaced_when_its_private_module_is_gone(
    server: MCPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should mcp.server._otel stop importing, the SDK's middleware is recognised by name and still replaced."""
    monkeypatch.setitem(sys.modules, _mcp_sdk.SDK_MIDDLEWARE_MODULE, None)  # import now raises ImportError
    assert _mcp_sdk.sdk_otel_middleware_class() is None
    chain = server.middleware
    length = len(chain)
    assert _mcp.use_our_middleware(chain)
    assert [type(m).__name__ for m in chain].count(_mcp_sdk.SDK_MIDDLEWARE_NAME) == 0
    assert len(chain) == length
