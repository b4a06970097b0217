"""Test helpers for tests/instrumentation: a real OTLP/HTTP receiver built on opentelemetry-proto."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
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
        self._grpc: Any = None
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

    def start_grpc(self) -> str:
        """Also receive OTLP/gRPC; returns its endpoint (``http://127.0.0.1:PORT``)."""
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        sink = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                sink._add_traces(request)
                with sink._lock:
                    sink.requests.append("grpc:traces")
                return trace_service_pb2.ExportTraceServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                sink._add_logs(request)
                with sink._lock:
                    sink.requests.append("grpc:logs")
                return logs_service_pb2.ExportLogsServiceResponse()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._grpc)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._grpc is not None:
            self._grpc.stop(None)


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


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without OTEL_*/AUTOHEAL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_"))}
    env.update(extra)
    return env
