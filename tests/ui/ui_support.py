"""Helpers for the page tests: real Chromium driven step by step, and OTLP traffic that makes groups."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, post, span, traces_payload

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
JS_DIR = ROOT / "js-instrumentation"
CHROMIUM = os.environ.get("AUTOHEAL_CHROMIUM", "/usr/bin/chromium")


def require_browser() -> str:
    """Node, playwright-core and Chromium, or a failure saying what is missing (never a skip)."""
    node = shutil.which("node")
    missing = [what for what, ok in (
        ("node on PATH", node is not None),
        (f"Chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)),
        ("js-instrumentation/node_modules/playwright-core (./scripts/setup.sh)",
         (JS_DIR / "node_modules" / "playwright-core").is_dir()),
    ) if not ok]
    assert not missing, "the page tests need: " + ", ".join(missing)
    assert node is not None
    return node


class Browser:
    """One headless Chromium page behind ``browser_driver.mjs``; every call waits for its answer."""

    def __init__(self) -> None:
        node = require_browser()
        self.proc = subprocess.Popen([node, str(HERE / "browser_driver.mjs"), str(JS_DIR), CHROMIUM],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)

    def call(self, cmd: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the browser driver exited: {stderr[-3000:]}")
            if line.startswith("RESULT "):
                answer = json.loads(line[len("RESULT "):])
                assert answer.get("ok"), f"{cmd} {args} failed: {answer.get('error')}"
                return answer.get("value", answer)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"cmd": "close"}\n')
                self.proc.stdin.flush()
                self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired, AssertionError):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()


def send_error(endpoint: str, *, service: str, exc_type: str, message: str, version: str = "1.0.0",
               source: str = "cli", logs: tuple[str, ...] = (), frames: tuple[str, ...] = ("checkout", "total"),
               environment: str = "production") -> str:
    """One failing trace (a span with an exception event, Python stack) and the logs before it; the trace id."""
    trace_id, span_id = new_trace_id(), new_span_id()
    stack = "Traceback (most recent call last):\n" + "".join(
        f'  File "/srv/{service}/app/{name}.py", line {10 + i}, in {name}\n    {name}()\n'
        for i, name in enumerate(frames)) + \
        '  File "/usr/lib/python3.12/site-packages/requests/api.py", line 59, in request\n    return x\n' + \
        f"{exc_type}: {message}"
    resource = {"service.name": service, "service.version": version, "autoheal.source": source,
                "deployment.environment.name": environment}
    if logs:
        records = [log_record(body, trace_id=trace_id, span_id=span_id) for body in logs]
        status, _ = post(f"{endpoint}/v1/logs", logs_payload(records, resource))
        assert status == 200
    failing = span(trace_id, span_id, f"{service} request", exception={"type": exc_type, "message": message,
                                                                         "stacktrace": stack})
    status, _ = post(f"{endpoint}/v1/traces", traces_payload([failing], resource))
    assert status == 200
    return trace_id


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: status, headers (lower-case names), body."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    status, _, body = get(url, headers)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)
