"""The Starlette application behind the HTTP port: OTLP/HTTP, ``/healthz`` and ``/metrics``.

Everything that blocks (decoding, the assembler's lock, the intake journal's group commit, a
metrics scrape) runs in bounded thread pools owned by the caller; the event loop only moves bytes.
Plain ``loop.run_in_executor`` is used rather than ``anyio.to_thread``: it costs about half the
CPU per hop (61 vs 113-189 µs measured), which is visible at thousands of requests a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsPartialSuccess, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otel_autoheal.assemble import Overloaded
from otel_autoheal.errors import OTLPDecodeError, PayloadTooLarge
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import decompress
from otel_autoheal.receive.intake import Intake, IntakeResult, bearer_matches

__all__ = ["METRICS_CONTENT_TYPE", "build_app"]

#: The Prometheus text exposition format.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: google.rpc.Code for each HTTP status we answer with (OTLP/HTTP error bodies are ``google.rpc.Status``).
_RPC_CODE = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 503: 14}
_OTLP_TYPES = ("application/x-protobuf", "application/protobuf", "application/json")

_NOT_FOUND = "not found: use POST /v1/traces, POST /v1/logs, GET /healthz, GET /metrics"


class _OTLPEndpoint:
    """``POST`` (and CORS preflight) for one OTLP signal."""

    def __init__(self, signal: str, intake: Intake, cors: _Cors, pool: Executor) -> None:
        self.accept: Callable[[bytes, str], IntakeResult] = intake.traces if signal == "traces" else intake.logs
        self.signal = signal
        self.intake = intake
        self.cors = cors
        self.pool = pool

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self.cors.preflight(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        as_json = content_type == "application/json"
        if not self.intake.authorized(request.headers.get("authorization")):
            return self._refuse(request, "unauthenticated", 401, "missing or wrong bearer token (AUTOHEAL_INGEST_TOKEN)",
                                as_json, {"WWW-Authenticate": "Bearer"})
        if content_type not in _OTLP_TYPES:
            return self._refuse(request, "content_type", 415, f"unsupported Content-Type {content_type!r} "
                                "(use application/x-protobuf or application/json)", as_json)
        limit = self.intake.max_request_bytes
        declared = request.headers.get("content-length")
        # llhttp refuses a malformed Content-Length before we get here; isdigit() is belt and braces.
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._refuse(request, "too_large", 413, f"request body of {declared} bytes exceeds the limit of "
                                f"{limit} bytes (max_request_bytes)", as_json)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return self._refuse(request, "too_large", 413, f"request body exceeds the limit of {limit} bytes "
                                        "(max_request_bytes)", as_json)
                chunks.append(chunk)
        except ClientDisconnect:
            # Gone (or cut off by http_body_timeout): nothing was acknowledged, nothing to answer.
            return Response(status_code=400)
        encoding = request.headers.get("content-encoding", "")
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self.pool, self._ingest, b"".join(chunks), encoding, content_type)
        except PayloadTooLarge as exc:
            self.intake.reject("too_large")
            return self._error(request, 413, f"{exc} (max_request_bytes)", as_json)
        except OTLPDecodeError as exc:
            self.intake.reject("invalid")
            return self._error(request, 400, str(exc), as_json)
        except Overloaded as exc:
            self.intake.reject("overloaded")
            return self._error(request, 503, str(exc), as_json, {"Retry-After": "5"})
        return self._success(request, result, as_json)

    def _ingest(self, body: bytes, encoding: str, content_type: str) -> IntakeResult:
        return self.accept(decompress(body, encoding, self.intake.max_request_bytes), content_type)

    def _refuse(self, request: Request, reason: str, status: int, message: str, as_json: bool,
                headers: dict[str, str] | None = None) -> Response:
        """An answer before the body was read: the connection is closed rather than drained."""
        self.intake.reject(reason)
        return self._error(request, status, message, as_json, {**(headers or {}), "Connection": "close"})

    def _error(self, request: Request, status: int, message: str, as_json: bool,
               headers: dict[str, str] | None = None) -> Response:
        return otlp_error(status, message, as_json, {**self.cors.headers(request), **(headers or {})})

    def _success(self, request: Request, result: IntakeResult, as_json: bool) -> Response:
        headers = self.cors.headers(request)
        if as_json:
            partial: dict[str, Any] = {}
            if result.rejected:
                key = "rejectedSpans" if self.signal == "traces" else "rejectedLogRecords"
                partial = {"partialSuccess": {key: str(result.rejected), "errorMessage": result.message}}
            return Response(json.dumps(partial), 200, headers, "application/json")
        body = b""
        if result.rejected:
            message: ExportTraceServiceResponse | ExportLogsServiceResponse
            if self.signal == "traces":
                message = ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
                    rejected_spans=result.rejected, error_message=result.message))
            else:
                message = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(
                    rejected_log_records=result.rejected, error_message=result.message))
            body = message.SerializeToString()
        return Response(body, 200, headers, "application/x-protobuf")


def otlp_error(status: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> Response:
    """An OTLP/HTTP error: a ``google.rpc.Status`` in the request's encoding."""
    code = _RPC_CODE.get(status, 2)
    if as_json:
        return Response(json.dumps({"code": code, "message": message}), status, headers, "application/json")
    return Response(Status(code=code, message=message).SerializeToString(), status, headers, "application/x-protobuf")


class _Cors:
    """CORS for the configured browser origins (``cors_origins``); ``*`` allows any."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)
        self.any = "*" in self.origins

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.any or origin in self.origins)

    def headers(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and self.allowed(origin):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not origin or not self.allowed(origin):
            return Response("origin not allowed (cors_origins / AUTOHEAL_CORS_ORIGINS)", 403, media_type="text/plain")
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers")
            or "Content-Type, Authorization",
            "Access-Control-Max-Age": "7200",
            "Vary": "Origin",
        })


def build_app(intake: Intake, metrics: Metrics, cors_origins: tuple[str, ...], health: Callable[[], dict[str, Any]],
              intake_pool: Executor, scrape_pool: Executor, metrics_token: str = "",
              extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The application: OTLP routes, ``/healthz``, ``/metrics``, then ``extra_routes`` (e.g. UI pages).

    ``intake_pool`` runs decoding and intake, ``scrape_pool`` metrics rendering, so that scrapers
    never take intake's threads; both are bounded by their size.
    """
    cors = _Cors(cors_origins)
    token = metrics_token.encode()

    async def healthz(request: Request) -> Response:
        return Response(json.dumps(health()), media_type="application/json")

    async def metrics_page(request: Request) -> Response:
        if token and not bearer_matches(request.headers.get("authorization"), token):
            return Response("missing or wrong bearer token (metrics_token / AUTOHEAL_METRICS_TOKEN)", 401,
                            {"WWW-Authenticate": "Bearer"}, "text/plain")
        text = await asyncio.get_running_loop().run_in_executor(scrape_pool, metrics.render)
        return Response(text.encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if request.method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            return otlp_error(404 if status == 404 else status,
                              f"unknown path {request.url.path[:100]!r} (use /v1/traces or /v1/logs)",
                              content_type == "application/json", {"Connection": "close"})
        return Response(_NOT_FOUND, status, media_type="text/plain")

    routes: list[BaseRoute] = []
    for signal in ("traces", "logs"):
        endpoint = _OTLPEndpoint(signal, intake, cors, intake_pool)
        for path in (f"/v1/{signal}", f"/v1/{signal}/"):
            routes.append(Route(path, endpoint.handle, methods=["POST", "OPTIONS"]))
    routes += [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics_page, methods=["GET"]),
               *extra_routes]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
