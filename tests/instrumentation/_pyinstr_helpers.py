"""Test helpers for tests/instrumentation: a real OTLP/HTTP receiver built on opentelemetry-proto."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


class Span(dict[str, Any]):
    """A received span flattened to plain data (ids as hex)."""


class OtlpSink:
    """Collects what arrives on /v1/traces and /v1/logs."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    if self.path == "/v1/traces":
                        sink._add_traces(ExportTraceServiceRequest.FromString(body))
                    elif self.path == "/v1/logs":
                        sink._add_logs(ExportLogsServiceRequest.FromString(body))
                    else:
                        self.send_response(404)
                        self.end_headers()
                        return
                except Exception:
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock:
                    sink.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add_traces(self, req: ExportTraceServiceRequest) -> None:
        out = []
        for rs in req.resource_spans:
            resource = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(
                        {
                            "resource": resource,
                            "scope": ss.scope.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "name": s.name,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": attrs(s.attributes),
                            "status_code": s.status.code,
                            "status_message": s.status.message,
                            "events": [
                                {"name": e.name, "time": e.time_unix_nano, "attributes": attrs(e.attributes)}
                                for e in s.events
                            ],
                        }
                    )
        with self._lock:
            self.spans.extend(out)

    def _add_logs(self, req: ExportLogsServiceRequest) -> None:
        out = []
        for rl in req.resource_logs:
            resource = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    out.append(
                        {
                            "resource": resource,
                            "trace_id": r.trace_id.hex(),
                            "span_id": r.span_id.hex(),
                            "time": r.time_unix_nano,
                            "severity_number": r.severity_number,
                            "severity_text": r.severity_text,
                            "body": any_value(r.body),
                            "attributes": attrs(r.attributes),
                            "event_name": r.event_name,
                        }
                    )
        with self._lock:
            self.logs.extend(out)

    def wait_for(self, predicate: Callable[[OtlpSink], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                result = predicate(self)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; spans={self.spans!r} logs={self.logs!r}")
            time.sleep(0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Proc:
    """A background process in its own process group, killed at teardown."""

    def __init__(self, args: list[str], env: dict[str, str], **kw: Any) -> None:
        self.popen = subprocess.Popen(args, env=env, start_new_session=True, **kw)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=15)


# -- the real service ---------------------------------------------------------------------------
def service_command() -> list[str] | None:
    exe = shutil.which("otel-autoheal")
    if exe:
        return [exe]
    try:
        import otel_autoheal.cli  # noqa: F401
    except Exception:
        return None
    return [PYTHON, "-m", "otel_autoheal.cli"]


class Service:
    def __init__(self, command: list[str]) -> None:
        self.state_dir = tempfile.mkdtemp(prefix="autoheal-state-")
        self.grpc_port, self.http_port = free_port(), free_port()
        self.grpc_endpoint = f"127.0.0.1:{self.grpc_port}"
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        self.command = command
        self.proc = Proc(
            [
                *command,
                "serve",
                "--otlp-grpc",
                self.grpc_endpoint,
                "--otlp-http",
                f"127.0.0.1:{self.http_port}",
                "--state",
                self.state_dir,
                "--trace-wait",
                "1",
            ],
            env=base_env(),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.http_endpoint + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("otel-autoheal serve did not become ready")
            time.sleep(0.1)

    def issues(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            [*self.command, "issues", "--state", self.state_dir, "--json"], capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            return []
        return list(json.loads(out.stdout or "[]"))

    def wait_for_issues(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            issues = self.issues()
            result = predicate(issues)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching issue within {timeout}s: {issues!r}")
            time.sleep(0.25)

    def close(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)




def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without OTEL_*/AUTOHEAL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_"))}
    env.update(extra)
    return env
