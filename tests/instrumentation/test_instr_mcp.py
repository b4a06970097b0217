"""End-to-end tests of MCP server instrumentation: the example server in a subprocess, the real mcp client."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from _pyinstr_helpers import EXAMPLES, PYTHON, OtlpSink, Proc, base_env

SERVER = EXAMPLES / "mcp_server" / "server.py"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def start_http_server(processes: list[Proc], sink: OtlpSink, script: Path = SERVER, *extra: str) -> str:
    proc = Proc(
        [PYTHON, str(script), "--transport", "http", "--port", "0", *extra],
        env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint, OTEL_SERVICE_NAME="example-mcp-test"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.append(proc)
    assert proc.popen.stdout is not None
    line = proc.popen.stdout.readline()  # the ready line; EOF if the server died
    assert line, "MCP server exited before it was ready"
    return str(json.loads(line)["url"])


def call(server: Any, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments, meta=meta)

    return anyio.run(go)


def tool_spans(sink: OtlpSink, tool: str) -> list[dict[str, Any]]:
    return [s for s in sink.spans if s["name"] == f"tools/call {tool}" and s["end"]]


def test_failing_tool_records_real_exception_continuing_callers_trace(
    processes: list[Proc], otlp_sink: OtlpSink
) -> None:
    """divide(1, 0) over HTTP: the tools/call span has the tool's own stack, its args and the caller's trace."""
    url = start_http_server(processes, otlp_sink)
    result = call(
        url, "divide", {"a": 1, "b": 0, "api_key": "sk-live-abcdef"}, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    )
    assert result.is_error is True

    (span,) = otlp_sink.wait_for(lambda s: tool_spans(s, "divide"))
    assert span["trace_id"] == TRACE_ID
    assert span["parent_span_id"] == PARENT_ID
    assert span["kind"] == 2  # SERVER
    assert span["status_code"] == 2
    assert span["resource"]["autoheal.source"] == "mcp"
    assert span["resource"]["service.name"] == "example-mcp-test"
    a = span["attributes"]
    assert a["error.type"] == "ZeroDivisionError"
    assert a["gen_ai.tool.name"] == "divide"
    args = json.loads(a["gen_ai.tool.call.arguments"])
    assert args == {"a": 1, "b": 0, "api_key": "[redacted:api_key]"}
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "ZeroDivisionError"
    stack = event["attributes"]["exception.stacktrace"]
    assert "in _ratio" in stack and "in divide" in stack and "return a / b" in stack

    logs = otlp_sink.wait_for(
        lambda s: [r for r in s.logs if r["trace_id"] == TRACE_ID and r["event_name"] == "exception"]
    )
    assert len(logs) == 1
    exc_log = logs[0]
    assert exc_log["span_id"] == span["span_id"]
    assert exc_log["attributes"]["exception.stacktrace"] == stack
    # the tool's own log lines are correlated to the same span, and the SDK's duplicate stack is not sent again
    same_span = otlp_sink.wait_for(
        lambda s: [
            r for r in s.logs if r["span_id"] == span["span_id"] and r["body"] == "computing ratio of 1.0 and 0.0"
        ]
    )
    assert same_span
    with_stack = [r for r in otlp_sink.logs if r["trace_id"] == TRACE_ID and "exception.stacktrace" in r["attributes"]]
    assert len(with_stack) == 1


def test_is_error_result_and_success(processes: list[Proc], otlp_sink: OtlpSink) -> None:
    """An isError result returned on purpose is an error (tool_error); a successful call is not."""
    url = start_http_server(processes, otlp_sink)
    assert call(url, "lookup_user", {"user_id": "nobody"}).is_error is True
    ok = call(url, "add", {"a": 2, "b": 3})
    assert ok.is_error is not True

    (err,) = otlp_sink.wait_for(lambda s: tool_spans(s, "lookup_user"))
    assert err["status_code"] == 2
    assert err["attributes"]["error.type"] == "tool_error"
    assert err["events"] == []
    logs = otlp_sink.wait_for(lambda s: [r for r in s.logs if r["span_id"] == err["span_id"] and r["event_name"]])
    assert logs[0]["attributes"]["exception.type"] == "tool_error"
    assert "no user with id 'nobody'" in logs[0]["attributes"]["exception.message"]

    (good,) = otlp_sink.wait_for(lambda s: tool_spans(s, "add"))
    assert good["status_code"] == 0
    assert "error.type" not in good["attributes"]


def test_stdio_transport(otlp_sink: OtlpSink) -> None:
    """Over stdio the failing tool is recorded too, and the server flushes at shutdown."""
    params = StdioServerParameters(
        command=PYTHON,
        args=[str(SERVER), "--transport", "stdio"],
        env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_sink.endpoint),
    )
    result = call(params, "divide", {"a": 4, "b": 0}, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert result.is_error is True
    (span,) = otlp_sink.wait_for(lambda s: tool_spans(s, "divide"))
    assert span["trace_id"] == TRACE_ID
    assert span["events"][0]["attributes"]["exception.type"] == "ZeroDivisionError"


LOWLEVEL = textwrap.dedent(
    """
    import anyio, sys
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server
    from autoheal_instrumentation import instrument_mcp, shutdown

    def explode(n):
        raise LookupError(f"no row {n}")

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[types.Tool(name="fetch", input_schema={"type": "object"})])

    async def call_tool(ctx, params):
        if params.name == "fetch":
            explode(params.arguments["row"])
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    server = Server("lowlevel-demo", on_list_tools=list_tools, on_call_tool=call_tool)
    instrument_mcp(server)

    async def main():
        async with stdio_server() as (r, w):
            await server.run(r, w, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        shutdown()
    """
)


def test_lowlevel_server(otlp_sink: OtlpSink, tmp_path: Path) -> None:
    """A low-level Server tool that raises has its exception and stack recorded on the span."""
    script = tmp_path / "lowlevel.py"
    script.write_text(LOWLEVEL)
    params = StdioServerParameters(
        command=PYTHON, args=[str(script)], env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_sink.endpoint)
    )

    async def go() -> None:
        async with Client(params) as client:
            # The client raises whatever error type its mcp release maps a tool failure to.
            with pytest.raises(Exception):  # noqa: B017
                await client.call_tool("fetch", {"row": 7})

    anyio.run(go)
    (span,) = otlp_sink.wait_for(lambda s: tool_spans(s, "fetch"))
    assert span["resource"]["service.name"] == "lowlevel-demo"
    assert span["attributes"]["error.type"] == "LookupError"
    assert "in explode" in span["events"][0]["attributes"]["exception.stacktrace"]


def test_cors_preflight_allows_configured_origin(processes: list[Proc], otlp_sink: OtlpSink) -> None:
    """The streamable HTTP endpoint answers a browser preflight for a configured origin."""
    import urllib.error
    import urllib.request

    url = start_http_server(processes, otlp_sink, SERVER, "--cors-origin", "https://app.example.test")
    request = urllib.request.Request(
        url,
        method="OPTIONS",
        headers={
            "Origin": "https://app.example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,mcp-session-id,mcp-protocol-version",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
    initialize = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
    ).encode()

    def post(origin: str) -> Any:
        return urllib.request.Request(
            url,
            data=initialize,
            method="POST",
            headers={
                "Origin": origin,
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )

    with urllib.request.urlopen(post("https://app.example.test"), timeout=10) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
        assert "Mcp-Session-Id" in response.headers["Access-Control-Expose-Headers"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post("https://elsewhere.example.test"), timeout=10)
    assert refused.value.code == 403
    health = url.rsplit("/mcp", 1)[0] + "/healthz"
    with urllib.request.urlopen(health, timeout=10) as response:
        assert json.load(response) == {"status": "ok"}


def test_grpc_protocol(otlp_sink: OtlpSink) -> None:
    """With OTEL_EXPORTER_OTLP_PROTOCOL=grpc the server exports spans and logs over OTLP/gRPC."""
    endpoint = otlp_sink.start_grpc()
    params = StdioServerParameters(
        command=PYTHON,
        args=[str(SERVER), "--transport", "stdio"],
        env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"),
    )
    assert call(params, "divide", {"a": 4, "b": 0}).is_error is True
    (span,) = otlp_sink.wait_for(lambda s: tool_spans(s, "divide"))
    assert span["attributes"]["error.type"] == "ZeroDivisionError"
    assert otlp_sink.wait_for(lambda s: [r for r in s.logs if r["event_name"] == "exception"])
    assert all(r.startswith("grpc:") for r in otlp_sink.requests)
