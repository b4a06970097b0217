"""A small MCP server instrumented with otel-autoheal (mcp 2.x ``MCPServer``).

Tools: ``add`` (succeeds), ``divide`` (fails with ZeroDivisionError inside a helper when b=0),
``lookup_user`` (returns ``isError`` on purpose for an unknown user).

    python examples/mcp_server/server.py --transport stdio
    python examples/mcp_server/server.py --transport http --port 8765 --cors-origin http://localhost:5173

Over HTTP the MCP endpoint is ``http://127.0.0.1:PORT/mcp`` (streamable HTTP), ``GET /healthz``
answers 200, and one JSON line ``{"ready": true, "url": ..., "port": ...}`` is printed on stdout
once the server accepts connections (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from autoheal_instrumentation import instrument_mcp, shutdown

log = logging.getLogger("example_mcp.tools")

server = MCPServer("example-mcp")

_USERS = {"u1": "Ada Lovelace", "u2": "Grace Hopper"}


def _ratio(a: float, b: float) -> float:
    log.info("computing ratio of %s and %s", a, b)
    return a / b


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    log.info("adding %s and %s", a, b)
    return a + b


@server.tool()
def divide(a: float, b: float, api_key: str = "") -> float:
    """Divide a by b (fails with a real stack when b is 0)."""
    log.info("divide called")
    return _ratio(a, b)


@server.tool()
def lookup_user(user_id: str) -> CallToolResult:
    """Look a user up; an unknown id is reported to the model as isError."""
    name = _USERS.get(user_id)
    if name is None:
        log.warning("unknown user %s", user_id)
        return CallToolResult(content=[TextContent(type="text", text=f"no user with id {user_id!r}")], is_error=True)
    return CallToolResult(content=[TextContent(type="text", text=name)])


@server.custom_route("/healthz", methods=["GET"])
async def healthz(request: Any) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "ok"})


def _http_app(host: str, cors_origins: list[str]) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.middleware.cors import CORSMiddleware

    any_origin = "*" in cors_origins
    local = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    security = TransportSecuritySettings(
        # DNS-rebinding protection checks Host and Origin; browsers from the listed origins must pass it.
        enable_dns_rebinding_protection=not any_origin,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", host + ":*"],
        allowed_origins=local + [o for o in cors_origins if o != "*"],
    )
    app = server.streamable_http_app(transport_security=security, host=host)
    return CORSMiddleware(
        app,
        allow_origins=["*"] if any_origin else [o for o in cors_origins if "*" not in o],
        allow_origin_regex=None if any_origin else r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?",
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Mcp-Session-Id", "Mcp-Protocol-Version"],
        max_age=600,
    )


async def _serve_http(host: str, port: int, cors_origins: list[str]) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(_http_app(host, cors_origins), log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started and not task.done():
        await asyncio.sleep(0.02)
    if uv.started:
        url = f"http://{host}:{actual_port}/mcp"
        print(json.dumps({"ready": True, "url": url, "port": actual_port}), flush=True)
    await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[o for o in os.environ.get("EXAMPLE_MCP_CORS_ORIGINS", "").split(",") if o],
        help="browser origin allowed to call the server (repeatable; localhost origins are always allowed; '*' = any)",
    )
    args = parser.parse_args(argv)
    # stderr only: stdout carries the protocol on stdio. force=True: MCPServer() already configured
    # the root logger at import (a RichHandler when rich is installed), which would make this call a
    # no-op; its traceback rendering holds a failing tool call for most of a second, long enough
    # for the logs before the error to be exported, and the trace released, without the error.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    instrument_mcp(server, service_version="0.1.0")
    # uvicorn re-raises SIGTERM after its own shutdown; as SystemExit it lets `finally` flush the
    # telemetry still queued (docker stop, Kubernetes) instead of killing the process first.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if args.transport == "stdio":
            server.run("stdio")
        else:
            asyncio.run(_serve_http(args.host, args.port, args.cors_origin))
    except KeyboardInterrupt:
        pass
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
