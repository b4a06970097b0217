"""Issue 6: Python CLI, Python MCP server + Node MCP client, and Chromium -> collector -> Jaeger + otel-autoheal -> GitHub.

Every program sends only to the collector (otelcol-autoheal with collector-config/otelcol-autoheal.yaml).
The collector keeps whole error traces for otel-autoheal (tail sampling) and sends every trace to Jaeger;
otel-autoheal files the issues through PyGithub on the GitHub REST stand-in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from collector_stack import Binaries, Collector, Jaeger, http_get, start_collector, wait_for
from processes import stop_process_group
from tests.github_standin.server import GitHubStandin

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "js-instrumentation"
HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("AUTOHEAL_CHROMIUM", "/usr/bin/chromium")

DECISION_WAIT_S = 2
# Logs reach otel-autoheal at once, the spans of a kept trace only after the tail-sampling decision:
# the service must wait longer than that or it processes a trace without its spans.
TRACE_WAIT_S = DECISION_WAIT_S + 4
BURST_TRACES, BURST_SPANS_PER_TRACE = 50, 4
DEADLINE_S = 120.0


# --------------------------------------------------------------------------------------------------
# Processes and small helpers


class _Proc:
    """A child process in its own process group, output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        stop_process_group(self.proc, grace=15)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], timeout: float = DEADLINE_S) -> subprocess.CompletedProcess[str]:
    """Run a short-lived program (in its own session, so a timeout kills all of it)."""
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{argv} timed out\n--- stdout\n{out}\n--- stderr\n{err}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _driver_result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]
    raise AssertionError(f"{done.args} printed no result (exit {done.returncode})\n--- stdout\n"
                         f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")


def _spans(jaeger_body: bytes) -> list[dict[str, Any]]:
    """The spans of a Jaeger ``/api/v3`` answer (OTLP/JSON ``TracesData`` under ``result``)."""
    data = json.loads(jaeger_body)
    data = data.get("result", data)
    return [
        span
        for rs in data.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
        for span in ss.get("spans", [])
    ]


def _services(jaeger_body: bytes) -> set[str]:
    data = json.loads(jaeger_body)
    data = data.get("result", data)
    names = set()
    for rs in data.get("resourceSpans", []):
        for attr in rs.get("resource", {}).get("attributes", []):
            if attr["key"] == "service.name":
                names.add(attr["value"].get("stringValue", ""))
    return names


def _is_error(span: dict[str, Any]) -> bool:
    code = span.get("status", {}).get("code")
    return code in (2, "STATUS_CODE_ERROR") or any(e.get("name") == "exception" for e in span.get("events", []))


def _jaeger_trace(jaeger: Jaeger, trace_id: str, min_spans: int = 1) -> list[dict[str, Any]]:
    """Poll Jaeger until it holds at least ``min_spans`` spans of ``trace_id``."""

    def probe() -> list[dict[str, Any]] | None:
        status, body = jaeger.get_trace(trace_id)
        spans = _spans(body) if status == 200 else []
        return spans if len(spans) >= min_spans else None

    return wait_for(probe, timeout=DEADLINE_S, what=f"{min_spans}+ spans of trace {trace_id} in Jaeger",
                    interval=0.5)


def _metric(text: str, name: str, label: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _autoheal_exported_spans(collector: Collector) -> float:
    """Spans the collector has sent to otel-autoheal (0 while the metric is absent)."""
    return _metric(collector.metrics_text(), "otelcol_exporter_sent_spans", 'exporter="otlp_grpc/autoheal"')


class _Site:
    """The test page's static files on 127.0.0.1 (a free port), filled in once the collector is up."""

    def __init__(self) -> None:
        files: dict[str, tuple[str, bytes]] = {}
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                entry = files.get(self.path.split("?", 1)[0])
                if entry is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", entry[0])
                self.send_header("Content-Length", str(len(entry[1])))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(entry[1])

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# The page's own code, in its own file so the V8 stack names it.
_APP_JS = """\
function applyCoupon(code) {
  throw new RangeError('coupon ' + code + ' has expired');
}
function onCheckoutClick() {
  applyCoupon('SPRING24');
}
console.log('stack-web: applying the coupon before checkout');
setTimeout(onCheckoutClick, 0);
"""


def _page_html(collector_url: str) -> str:
    cfg = json.dumps({"serviceName": "stack-web", "serviceVersion": "2.0.0", "endpoint": collector_url})
    return (
        "<!doctype html><html><head><title>stack shop</title>"
        '<script src="/otel-autoheal.iife.min.js"></script>'
        f"<script>OtelAutoheal.init({cfg});</script>"
        '<script src="/app.js"></script></head><body>shop</body></html>'
    )


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def site() -> Iterator[_Site]:
    s = _Site()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., _Proc]]:
    started: list[_Proc] = []

    def start(name: str, argv: list[str], env: dict[str, str]) -> _Proc:
        p = _Proc(name, argv, env, tmp_path)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop()


def _require_tools() -> str:
    """Fail (never skip) when a program or build output the test drives is missing."""
    node = shutil.which("node")
    missing = [what for what, ok in [
        ("node on PATH", node is not None),
        (f"Chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)),
        ("js-instrumentation/dist (npm ci && npm run build)", (JS_DIR / "dist" / "index.js").is_file()),
        ("js-instrumentation/dist/otel-autoheal.iife.min.js", (JS_DIR / "dist" / "otel-autoheal.iife.min.js").is_file()),
        ("@modelcontextprotocol/sdk in js-instrumentation/node_modules",
         (JS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json").is_file()),
        ("playwright-core in js-instrumentation/node_modules",
         (JS_DIR / "node_modules" / "playwright-core" / "package.json").is_file()),
    ] if not ok]
    assert not missing, "the whole-stack test needs: " + "; ".join(missing)
    assert node is not None
    return node


# --------------------------------------------------------------------------------------------------
# The test


def test_cli_mcp_and_browser_errors_become_github_issues_through_the_collector(
    stack_binaries: Binaries,
    stack_jaeger: Jaeger,
    github_standin: GitHubStandin,
    autoheal_factory: Callable[..., Any],  # tests/conftest.py: the real service on free ports
    site: _Site,
    procs: Callable[..., _Proc],
    tmp_path: Path,
) -> None:
    """Errors from a Python CLI, a Node->Python MCP call and Chromium become GitHub issues; successes reach only Jaeger."""
    node = _require_tools()
    jaeger = stack_jaeger
    autoheal = autoheal_factory(
        trace_wait=TRACE_WAIT_S,
        env={
            **github_standin.env(),
            "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": "0.05",
            "AUTOHEAL_GITHUB_COMMENT_INTERVAL": "0",
            "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL": "1",
            "AUTOHEAL_GITHUB_BACKOFF_BASE": "0.2",
            "AUTOHEAL_GITHUB_BACKOFF_MAX": "2",
            "AUTOHEAL_GITHUB_TIMEOUT": "10",
            "AUTOHEAL_TRACE_URL_TEMPLATE": f"{jaeger.query_url}/api/v3/traces/{{trace_id}}",
        },
    )
    collector = start_collector(
        stack_binaries.otelcol,
        tmp_path,
        autoheal_endpoint=autoheal.grpc_endpoint,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        env={
            "OTELCOL_TAIL_DECISION_WAIT": f"{DECISION_WAIT_S}s",
            "OTELCOL_CORS_ALLOWED_ORIGINS": f"[{site.origin}]",
        },
    )
    try:
        _run_stack(node, jaeger, collector, autoheal, github_standin, site, procs, tmp_path)
    except BaseException:
        print(collector.process.log_tail())
        print("--- otel-autoheal log\n" + autoheal.log_text()[-6000:])
        raise
    finally:
        collector.stop()


def _run_stack(
    node: str,
    jaeger: Jaeger,
    collector: Collector,
    autoheal: Any,
    standin: GitHubStandin,
    site: _Site,
    procs: Callable[..., _Proc],
    tmp_path: Path,
) -> None:
    otlp = collector.http_endpoint
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)

    # 1. A burst of successful spans goes to Jaeger but never reaches otel-autoheal. It is sent
    #    first, while nothing else is in flight, so any span otel-autoheal receives would be one of them.
    received_before = autoheal.metric("autoheal_spans_received_total")
    burst = _send_burst(otlp)
    for trace_id in burst:
        _jaeger_trace(jaeger, trace_id, BURST_SPANS_PER_TRACE)
    wait_for(lambda: collector.traces_not_sampled() >= BURST_TRACES, timeout=DEADLINE_S,
             what=f"the tail-sampling decision to drop the {BURST_TRACES} burst traces", interval=0.25)
    assert _autoheal_exported_spans(collector) == 0, "the collector sent successful spans to otel-autoheal"
    assert autoheal.metric("autoheal_spans_received_total") == received_before, (
        "otel-autoheal received spans of the successful burst"
    )

    # 2. The Python MCP example server (started now: it takes a while to import).
    mcp_env = _child_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp, OTEL_SERVICE_NAME="stack-mcp-server")
    mcp = procs("mcp-server", [sys.executable, str(ROOT / "examples/mcp_server/server.py"),
                               "--transport", "http", "--port", "0"], mcp_env)

    # 3. The instrumented Python CLI: a failing sync and, in full mode, a successful status run.
    cli_env = _child_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp, AUTOHEAL_SPOOL_DIR=str(tmp_path / "spool"),
                         AUTOHEAL_EXPORT_TIMEOUT="20")
    cli = [sys.executable, str(ROOT / "examples/cli/app.py")]
    failed = _run([*cli, "sync", "--token", "s3cret", "--fail"], cli_env)
    assert failed.returncode != 0 and "ValueError" in failed.stderr, failed.stderr[-3000:]
    ok = _run([*cli, "status"], {**cli_env, "AUTOHEAL_CLI_MODE": "full"})
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr[-3000:]
    assert not list((tmp_path / "spool").glob("**/*.*")), "the CLI spooled telemetry instead of sending it"

    # 4. The instrumented Node MCP client calls the Python server: `divide` fails, `add` succeeds.
    assert mcp.proc.stdout is not None
    ready = mcp.proc.stdout.readline().decode()
    assert '"ready": true' in ready, f"MCP server did not start: {ready!r}\n{mcp.stderr()}"
    mcp_url = json.loads(ready)["url"]
    client_run = _run([node, str(HERE / "mcp_client.mjs"), str(JS_DIR), mcp_url],
                      _child_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp))
    client = _driver_result(client_run)
    assert client_run.returncode == 0 and not client["errors"], client_run.stderr[-3000:]
    # mcp 2.x hides the exception from the model: the client sees an isError result only.
    assert client["divide_is_error"] and "divide" in client["divide_text"], client
    assert not client["add_is_error"] and "5" in client["add_text"], client
    assert client["stats"] is None or not client["stats"].get("dropped"), client["stats"]
    mcp_error_trace, mcp_ok_trace = client["error_trace"], client["ok_trace"]
    # The server keeps running until teardown: on SIGTERM uvicorn re-raises the signal after its own
    # shutdown, so the example's `finally: shutdown()` never runs and unexported telemetry is lost.

    # The whole MCP trace reached Jaeger: the app span, `initialize` and both sides of the failed call.
    # (Checked before the issues: it tells a propagation failure apart from a grouping one.)
    # The MCP trace: the app span, `initialize` and both sides of the failed call, from both services.
    mcp_spans = _jaeger_trace(jaeger, mcp_error_trace, 4)

    def mcp_trace_complete() -> list[dict[str, Any]] | None:
        _status, body = jaeger.get_trace(mcp_error_trace)
        spans = _spans(body)
        names = {s["name"] for s in spans}
        services = _services(body)
        ok = {"checkout ratio", "initialize", "tools/call divide"} <= names and {"stack-node-client", "stack-mcp-server"} <= services
        return spans if ok and sum(1 for s in spans if s["name"] == "tools/call divide") >= 2 else None

    mcp_spans = wait_for(mcp_trace_complete, timeout=DEADLINE_S, what="the whole MCP error trace in Jaeger",
                         interval=0.5, on_timeout=lambda: _describe(jaeger, mcp_error_trace))
    assert sum(1 for s in mcp_spans if not _is_error(s)) >= 2, "Jaeger keeps the spans that never failed"

    # 5. Chromium loads the page: a console line, then an uncaught error thrown from a named function.
    site.files["/otel-autoheal.iife.min.js"] = ("text/javascript", (JS_DIR / "dist/otel-autoheal.iife.min.js").read_bytes())
    site.files["/app.js"] = ("text/javascript", _APP_JS.encode())
    site.files["/"] = ("text/html", _page_html(otlp).encode())
    browser_run = _run([node, str(HERE / "browser.mjs"), str(JS_DIR), CHROMIUM, f"{site.origin}/", otlp],
                       _child_env())
    page = _driver_result(browser_run)
    assert "error" not in page, page
    assert any("applyCoupon" in e for e in page["pageErrors"]), page
    assert {e["status"] for e in page["exports"]} == {200} and all(e["cors"] == site.origin for e in page["exports"]), page

    # 6. One issue per source in otel-autoheal ...
    def by_source(issues: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
        found = {i["source"]: i for i in issues}
        return found if {"cli", "mcp", "browser"} <= found.keys() else None

    issues = autoheal.wait_for_issues(lambda i: by_source(i) is not None, timeout=DEADLINE_S)
    local = by_source(issues)
    assert local is not None

    # ... and on GitHub, filed through PyGithub with the fingerprint marker and the source labels.
    def filed() -> dict[str, dict[str, Any]] | None:
        out = {}
        for gh in standin.issues():
            for source in ("cli", "mcp", "browser"):
                if f"source:{source}" in gh["labels"]:
                    out[source] = gh
        return out if len(out) == 3 else None

    remote = wait_for(filed, timeout=DEADLINE_S, what="three GitHub issues on the stand-in", interval=0.25)
    for source, issue in local.items():
        gh = remote[source]
        assert f"<!-- autoheal:fingerprint={issue['fingerprint']} -->" in gh["body"], source
        assert "autoheal" in gh["labels"], gh["labels"]
        assert gh["state"] == "open" and gh["title"] == issue["title"], (gh["title"], issue["title"])
        assert issue["count"] == 1, f"{source}: one occurrence, processed once: {issue}"

    cli_issue, mcp_issue, web_issue = local["cli"], local["mcp"], local["browser"]
    cli_gh, mcp_gh, web_gh = remote["cli"]["body"], remote["mcp"]["body"], remote["browser"]["body"]

    # CLI: the ValueError from the manifest parser, its argv (token scrubbed) and the preceding logs.
    assert cli_issue["exception_type"].endswith("ValueError"), cli_issue["exception_type"]
    for body in (cli_issue["body"], cli_gh):
        assert "_parse_manifest" in body and "invalid literal for int()" in body
        for line in ("starting sync from", "fetched 3 manifest entries", "has no checksum, continuing"):
            assert line in body, f"CLI log line {line!r} missing"
        assert "sync" in body and "s3cret" not in body

    # MCP: one issue for the trace; the Python ZeroDivisionError is the root cause, the Node
    # client's failed call is folded in as related, with the server's and the client's logs.
    assert mcp_issue["exception_type"].endswith("ZeroDivisionError"), mcp_issue["exception_type"]
    assert mcp_issue["trace_ids"] == [mcp_error_trace], (mcp_issue["trace_ids"], mcp_error_trace)
    assert [i for i in issues if mcp_error_trace in i["trace_ids"]] == [mcp_issue], "one issue per MCP trace"
    for body in (mcp_issue["body"], mcp_gh):
        assert "_ratio" in body and "division by zero" in body and "divide" in body
        assert "computing ratio of 7" in body, "the server's log before the error"
        related = body.split("## Related errors in the same trace", 1)
        assert len(related) == 2 and "McpToolError" in related[1], "the Node client failure, folded in"
        assert "stack-node-client: asking the server to divide 7 by 0" in body, "the client's console line"

    # Browser: the V8 stack through the named functions and the console line before it.
    assert web_issue["exception_type"].endswith("RangeError"), web_issue["exception_type"]
    for body in (web_issue["body"], web_gh):
        assert "coupon SPRING24 has expired" in body
        assert re.search(r"applyCoupon.*app\.js:2:\d+", body) and "onCheckoutClick" in body, "the V8 stack"
        assert "stack-web: applying the coupon before checkout" in body

    # 7. Each issue's trace link opens the whole trace in Jaeger's API.
    for source, issue in local.items():
        (trace_id,) = issue["trace_ids"]
        links = re.findall(r"\[open trace\]\((http://[^)\s]+)\)", remote[source]["body"])
        assert links == [f"{jaeger.query_url}/api/v3/traces/{trace_id}"], (source, links)

        def probe(link: str = links[0]) -> bytes | None:
            status, body = http_get(link)
            return body if status == 200 and _spans(body) else None

        linked = wait_for(probe, timeout=DEADLINE_S, what=f"{source} trace link")
        assert trace_id in json.dumps(_spans(linked))
        assert b"s3cret" not in linked, f"{source}: the CLI token reached Jaeger"

    # 8. Successful traces reach Jaeger (both MCP sides of `add`; the CLI `status` run) but no issue.
    ok_spans = _jaeger_trace(jaeger, mcp_ok_trace, 3)
    assert not any(_is_error(s) for s in ok_spans)
    status_trace = wait_for(lambda: _find_trace(jaeger, "exampleapp", "status", started), timeout=DEADLINE_S,
                            what="the CLI status run in Jaeger", interval=0.5)
    final = autoheal.issues()
    assert len(final) == 3, [i["title"] for i in final]
    seen = {t for i in final for t in i["trace_ids"]}
    assert mcp_ok_trace not in seen and status_trace not in seen and not set(burst) & seen
    assert len(standin.issues()) == 3, [gh["title"] for gh in standin.issues()]

    # Positive control for step 1: the same counters do move for error traces.
    assert _autoheal_exported_spans(collector) > 0
    assert autoheal.metric("autoheal_spans_received_total") > received_before


def _describe(jaeger: Jaeger, trace_id: str) -> str:
    """Span names, services and status codes of a trace in Jaeger, for failure messages."""
    status, body = jaeger.get_trace(trace_id)
    if status != 200:
        return f"Jaeger answered {status} for {trace_id}"
    spans = [(s["name"], s.get("status", {}).get("code")) for s in _spans(body)]
    return f"trace {trace_id}: services {sorted(_services(body))}, spans {spans}"


def _find_trace(jaeger: Jaeger, service: str, name_part: str, since: dt.datetime) -> str | None:
    """The id of a trace of ``service`` that has a span whose name contains ``name_part``."""
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    url = (f"{jaeger.query_url}/api/v3/traces?query.service_name={quote(service)}"
           f"&query.start_time_min={since.strftime(fmt)}&query.start_time_max={now.strftime(fmt)}&query.num_traces=20")
    status, body = http_get(url)
    if status != 200:
        return None
    for span in _spans(body):
        if name_part in span["name"]:
            return str(span["traceId"])
    return None


def _send_burst(endpoint: str) -> list[str]:
    """Send BURST_TRACES successful traces of BURST_SPANS_PER_TRACE spans with the Python OTel SDK."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "stack-burst"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    tracer = provider.get_tracer("stack-burst")
    ids = []
    try:
        for n in range(BURST_TRACES):
            with tracer.start_as_current_span(f"request {n}") as root:
                ids.append(format(root.get_span_context().trace_id, "032x"))
                for step in range(BURST_SPANS_PER_TRACE - 1):
                    with tracer.start_as_current_span(f"step {step}"):
                        pass
        assert provider.force_flush(30_000), "the burst was not exported"
    finally:
        provider.shutdown()
    return ids
