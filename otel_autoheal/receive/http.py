"""OTLP/HTTP receiver (``POST /v1/traces``, ``/v1/logs``) plus ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otel_autoheal.assemble import Overloaded
from otel_autoheal.errors import ConfigError, OTLPDecodeError, PayloadTooLarge
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import decompress
from otel_autoheal.receive.intake import Intake, IntakeResult

__all__ = ["HttpReceiver"]

log = logging.getLogger("otel_autoheal.receive.http")

#: google.rpc.Code values used in error bodies.
_CODE = {400: 3, 401: 16, 404: 5, 411: 3, 413: 8, 415: 3, 503: 14}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _status_proto(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` message, encoded by hand (field 1: code, field 2: message)."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class HttpReceiver:
    """Serves OTLP/HTTP (protobuf and JSON, gzip/deflate) with CORS for configured browser origins."""

    def __init__(
        self, intake: Intake, metrics: Metrics, host: str, port: int, cors_origins: tuple[str, ...],
        health: Callable[[], dict[str, Any]],
    ) -> None:
        receiver = self
        self.intake = intake
        self.metrics = metrics
        self.cors_origins = cors_origins
        self.health = health

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "otel-autoheal"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), fmt % args)

            def _cors(self) -> None:
                origin = self.headers.get("Origin")
                if origin and (origin in receiver.cors_origins or "*" in receiver.cors_origins):
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Vary", "Origin")

            def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self._cors()
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str, json_body: bool, extra: dict[str, str] | None = None) -> None:
                code = _CODE.get(status, 2)
                if json_body:
                    self._send(status, json.dumps({"code": code, "message": message}).encode(), "application/json", extra)
                else:
                    self._send(status, _status_proto(code, message), "application/x-protobuf", extra)

            def do_OPTIONS(self) -> None:  # noqa: N802 - http.server naming
                origin = self.headers.get("Origin")
                if origin and (origin in receiver.cors_origins or "*" in receiver.cors_origins):
                    self.send_response(204)
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                    self.send_header("Access-Control-Allow-Headers",
                                     self.headers.get("Access-Control-Request-Headers") or "Content-Type, Authorization")
                    self.send_header("Access-Control-Max-Age", "7200")
                    self.send_header("Vary", "Origin")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(403, b"origin not allowed (cors_origins / AUTOHEAL_CORS_ORIGINS)", "text/plain")

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    health = receiver.health()
                    self._send(200 if health.get("status") == "ok" else 503, json.dumps(health).encode(),
                               "application/json")
                elif path == "/metrics":
                    self._send(200, receiver.metrics.render().encode(), "text/plain; version=0.0.4")
                else:
                    self._send(404, b"not found: use POST /v1/traces, POST /v1/logs, GET /healthz, GET /metrics",
                               "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0].rstrip("/")
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                as_json = content_type == "application/json"
                accept: Callable[[bytes, str], IntakeResult]
                if path == "/v1/traces":
                    accept = receiver.intake.traces
                elif path == "/v1/logs":
                    accept = receiver.intake.logs
                else:
                    self._drain_and_close()
                    self._error(404, f"unknown path {path[:100]!r} (use /v1/traces or /v1/logs)", as_json)
                    return
                if not receiver.intake.authorized(self.headers.get("Authorization")):
                    receiver.intake.reject("unauthenticated")
                    self._drain_and_close()
                    self._error(401, "missing or wrong bearer token (AUTOHEAL_INGEST_TOKEN)", as_json,
                                {"WWW-Authenticate": "Bearer"})
                    return
                if content_type not in ("application/json", "application/x-protobuf", "application/protobuf"):
                    receiver.intake.reject("content_type")
                    self._drain_and_close()
                    self._error(415, f"unsupported Content-Type {content_type!r} "
                                     "(use application/x-protobuf or application/json)", as_json)
                    return
                length_header = self.headers.get("Content-Length")
                if length_header is None or not length_header.strip().isdigit():
                    receiver.intake.reject("no_length")
                    self.close_connection = True
                    self._error(411, "Content-Length is required", as_json)
                    return
                length = int(length_header)
                limit = receiver.intake.max_request_bytes
                if length > limit:
                    receiver.intake.reject("too_large")
                    self.close_connection = True
                    self._error(413, f"request body of {length} bytes exceeds the limit of {limit} bytes "
                                     "(max_request_bytes)", as_json)
                    return
                body = self.rfile.read(length)
                try:
                    raw = decompress(body, self.headers.get("Content-Encoding", ""), limit)
                    result = accept(raw, content_type)
                except PayloadTooLarge as exc:
                    receiver.intake.reject("too_large")
                    self._error(413, str(exc), as_json)
                    return
                except OTLPDecodeError as exc:
                    receiver.intake.reject("invalid")
                    self._error(400, str(exc), as_json)
                    return
                except Overloaded as exc:
                    receiver.intake.reject("overloaded")
                    self._error(503, str(exc), as_json, {"Retry-After": "5"})
                    return
                self._send(200, *self._success(path, result, as_json))

            def _success(self, path: str, result: IntakeResult, as_json: bool) -> tuple[bytes, str]:
                partial: dict[str, Any] = {}
                if result.rejected:
                    key = "rejectedSpans" if path == "/v1/traces" else "rejectedLogRecords"
                    partial = {"partialSuccess": {key: str(result.rejected), "errorMessage": result.message}}
                if as_json:
                    return json.dumps(partial).encode(), "application/json"
                if not partial:
                    return b"", "application/x-protobuf"
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTracePartialSuccess,
                    ExportTraceServiceResponse,
                )

                message = ExportTraceServiceResponse(
                    partial_success=ExportTracePartialSuccess(rejected_spans=result.rejected, error_message=result.message)
                )
                return message.SerializeToString(), "application/x-protobuf"

            def _drain_and_close(self) -> None:
                """Read a small body so the client sees our answer; otherwise close the connection."""
                length = self.headers.get("Content-Length", "")
                if length.isdigit() and int(length) <= 1024 * 1024:
                    self.rfile.read(int(length))
                else:
                    self.close_connection = True

        try:
            self.server = _Server((host, port), Handler)
        except OSError as exc:
            raise ConfigError("otlp_http", f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                           "(use --otlp-http / AUTOHEAL_OTLP_HTTP)") from None
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="autoheal-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
