"""The Starlette application behind the HTTP port: OTLP/HTTP, ``/healthz`` and ``/metrics``.

Everything that blocks (the assembler's lock, the intake journal's group commit, decoding a large
body, a metrics scrape) runs in bounded thread pools owned by the caller. Only a small protobuf
body that holds no failure is ingested on the event loop itself, and only if the assembler's lock
is free at that moment (``_ingest_now``): that never waits, and saves the thread hop's CPU.
Plain ``loop.run_in_executor`` is used rather than ``anyio.to_thread`` (about half the CPU per
hop). The OTLP paths are served by a plain ASGI application in front of Starlette: on
the ingest hot path Starlette's request/response objects cost about a quarter of a millisecond
of CPU per request (measured with the OTLP/HTTP path of ``bench/ingest.py``); every other path, including routes
added later through ``extra_routes``, is ordinary Starlette.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
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
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from otel_autoheal.errors import OTLPDecodeError, Overloaded, PayloadTooLarge
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import decompress
from otel_autoheal.receive.intake import Intake, IntakeResult, bearer_matches

__all__ = ["INLINE_BYTES", "METRICS_CONTENT_TYPE", "OTLPFront", "build_app"]

#: The Prometheus text exposition format.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: google.rpc.Code for each HTTP status we answer with (OTLP/HTTP error bodies are ``google.rpc.Status``).
_RPC_CODE = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 503: 14}
_OTLP_TYPES = ("application/x-protobuf", "application/protobuf", "application/json")
#: Request headers the OTLP path reads.
_WANTED = frozenset((b"content-type", b"content-length", b"content-encoding", b"authorization", b"origin",
                     b"access-control-request-headers"))

#: Largest body (before and after decompression) ingested on the event loop when it holds no
#: failure; larger ones go to the intake pool. The bench's 40-trace requests are about 10 KiB; at
#: 256 KiB decoding and assembling takes about 2 ms, the longest stall an inline request causes.
INLINE_BYTES = 256 * 1024

_NOT_FOUND = "not found: use POST /v1/traces, POST /v1/logs, GET /healthz, GET /metrics"

#: An HTTP answer: status, body, content type, extra headers.
_Answer = tuple[int, bytes, str, dict[str, str]]


def otlp_error(status: int, message: str, as_json: bool, headers: Mapping[str, str] | None = None) -> _Answer:
    """An OTLP/HTTP error: a ``google.rpc.Status`` in the request's encoding."""
    code = _RPC_CODE.get(status, 2)
    if as_json:
        return status, json.dumps({"code": code, "message": message}).encode(), "application/json", dict(headers or {})
    return (status, Status(code=code, message=message).SerializeToString(), "application/x-protobuf",
            dict(headers or {}))


class _Cors:
    """CORS for the configured browser origins (``cors_origins``); ``*`` allows any."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)
        self.any = "*" in self.origins

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.any or origin in self.origins)

    def headers(self, origin: str | None) -> dict[str, str]:
        if origin and self.allowed(origin):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def preflight(self, origin: str | None, requested_headers: str | None) -> _Answer:
        if not origin or not self.allowed(origin):
            return 403, b"origin not allowed (cors_origins / AUTOHEAL_CORS_ORIGINS)", "text/plain", {}
        return 204, b"", "", {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": requested_headers or "Content-Type, Authorization",
            "Access-Control-Max-Age": "7200",
            "Vary": "Origin",
        }


async def _send_answer(send: Send, answer: _Answer) -> None:
    status, body, content_type, extra = answer
    headers = [(b"content-length", b"%d" % len(body))]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    headers += [(key.lower().encode(), value.encode("latin-1")) for key, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _OTLPEndpoint:
    """``POST`` (and CORS preflight) for one OTLP signal, as a plain ASGI handler."""

    def __init__(self, signal: str, intake: Intake, cors: _Cors, pool: Executor) -> None:
        self.accept: Callable[[bytes, str, str], IntakeResult] = intake.traces if signal == "traces" else intake.logs
        self.signal = signal
        self.intake = intake
        self.cors = cors
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name: value.decode("latin-1") for name, value in scope["headers"] if name in _WANTED}
        origin = headers.get(b"origin")
        if scope["method"] == "OPTIONS":
            await _send_answer(send, self.cors.preflight(origin, headers.get(b"access-control-request-headers")))
            return
        answer = await self._answer(headers, receive)
        if answer is not None:
            answer[3].update(self.cors.headers(origin))
            await _send_answer(send, answer)

    async def _answer(self, headers: dict[bytes, str], receive: Receive) -> _Answer | None:
        content_type = headers.get(b"content-type", "").split(";")[0].strip().lower()
        as_json = content_type == "application/json"
        if not self.intake.authorized(headers.get(b"authorization")):
            return self._refuse("unauthenticated", 401, "missing or wrong bearer token (AUTOHEAL_INGEST_TOKEN)",
                                as_json, {"WWW-Authenticate": "Bearer"})
        if content_type not in _OTLP_TYPES:
            return self._refuse("content_type", 415, f"unsupported Content-Type {content_type!r} "
                                "(use application/x-protobuf or application/json)", as_json)
        limit = self.intake.max_request_bytes
        declared = headers.get(b"content-length")
        # llhttp refuses a malformed Content-Length before we get here; isdigit() is belt and braces.
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._refuse("too_large", 413, f"request body of {declared} bytes exceeds the limit of "
                                f"{limit} bytes (max_request_bytes)", as_json)
        chunks: list[bytes] = []
        size = held = 0
        more = True
        busy = False
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # Gone (or cut off by http_body_timeout): nothing was acknowledged, nothing to answer.
                    return None
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                size += len(chunk)
                if size > limit:
                    return self._refuse("too_large", 413, f"request body exceeds the limit of {limit} bytes "
                                        "(max_request_bytes)", as_json)
                if busy:
                    continue
                if not self.intake.admit_bytes(len(chunk)):
                    # Over max_inflight_bytes: let go of the body and read the rest without keeping
                    # it, so that the sender gets its 503 (closing mid-body would reset the
                    # connection before the sender reads the answer).
                    busy = True
                    chunks.clear()
                    self.intake.release_bytes(held)
                    held = 0
                    continue
                held += len(chunk)
                chunks.append(chunk)
            if busy:
                self.intake.reject("busy")
                return otlp_error(503, f"request bodies in flight reached {self.intake.max_inflight_bytes} bytes "
                                  "(max_inflight_bytes); retry later", as_json, {"Retry-After": "1"})
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            del chunks
            return await self._ingest_answer(body, headers, content_type, as_json)
        finally:
            self.intake.release_bytes(held)

    async def _ingest_answer(self, body: bytes, headers: dict[bytes, str], content_type: str,
                             as_json: bool) -> _Answer:
        encoding = headers.get(b"content-encoding", "")
        trust = self.intake.trust(headers.get(b"authorization"), headers.get(b"origin"))
        try:
            entries: list[tuple[str, str, str]] = []
            result = self._ingest_now(body, encoding, content_type, trust, entries)
            if result is not None and self.signal == "traces":
                await self.intake.journal_now(entries, result)
            if result is None:
                result = await asyncio.get_running_loop().run_in_executor(
                    self.pool, self._ingest, body, encoding, content_type, trust)
        except PayloadTooLarge as exc:
            self.intake.reject("too_large")
            return otlp_error(413, f"{exc} (max_request_bytes)", as_json)
        except OTLPDecodeError as exc:
            self.intake.reject("invalid")
            return otlp_error(400, str(exc), as_json)
        except Overloaded as exc:
            self.intake.reject("overloaded")
            return otlp_error(503, str(exc), as_json, {"Retry-After": "5"})
        return self._success(result, as_json)

    def _ingest_now(self, body: bytes, encoding: str, content_type: str, trust: str,
                    entries: list[tuple[str, str, str]]) -> IntakeResult | None:
        """Ingest a small body on the event loop when the assembler's lock is free.

        The hop to a thread costs more CPU than decoding a small body (which holds the GIL either
        way); a large one would stall the loop. The failed spans of a trace export go to
        ``entries`` for the caller to journal, awaiting the journal writer on the loop; a logs
        export with an exception record takes a thread (its journal write comes before the
        assembler).
        """
        if len(body) > INLINE_BYTES:
            return None
        if encoding:
            try:
                # Capped, so that a small body inflating to a large one (or a bomb) goes to a thread.
                body = decompress(body, encoding, INLINE_BYTES)
            except PayloadTooLarge:
                return None
        if self.signal == "traces":  # failed spans are journalled by the caller, on the loop
            return self.intake.traces_now(body, content_type, trust, entries)
        return self.intake.logs_now(body, content_type, trust)

    def _ingest(self, body: bytes, encoding: str, content_type: str, trust: str) -> IntakeResult:
        return self.accept(decompress(body, encoding, self.intake.max_request_bytes), content_type, trust)

    def _refuse(self, reason: str, status: int, message: str, as_json: bool,
                headers: dict[str, str] | None = None) -> _Answer:
        """An answer before the body was read: the connection is closed rather than drained."""
        self.intake.reject(reason)
        return otlp_error(status, message, as_json, {**(headers or {}), "Connection": "close"})

    def _success(self, result: IntakeResult, as_json: bool) -> _Answer:
        if as_json:
            partial: dict[str, Any] = {}
            if result.rejected:
                key = "rejectedSpans" if self.signal == "traces" else "rejectedLogRecords"
                partial = {"partialSuccess": {key: str(result.rejected), "errorMessage": result.message}}
            return 200, json.dumps(partial).encode(), "application/json", {}
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
        return 200, body, "application/x-protobuf", {}


class OTLPFront:
    """The ASGI application uvicorn serves: ``POST``/``OPTIONS`` on an OTLP path go straight to its
    endpoint, the rest to the Starlette application ``app`` (whose router takes more routes).

    In front of Starlette rather than as its middleware: Starlette's error middleware wraps every
    request's ``send`` in Python, which measured 6% of the event loop's time on the OTLP/HTTP
    path of ``bench/ingest.py``; uvicorn answers 500 itself if an endpoint raises.
    """

    def __init__(self, app: Starlette, endpoints: Mapping[str, _OTLPEndpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "OPTIONS"):
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(intake: Intake, metrics: Metrics, cors_origins: tuple[str, ...], health: Callable[[], dict[str, Any]],
              intake_pool: Executor, scrape_pool: Executor, metrics_token: str = "",
              extra_routes: Sequence[BaseRoute] = ()) -> OTLPFront:
    """The application: OTLP ingest, ``/healthz``, ``/metrics``, then ``extra_routes`` (e.g. UI pages).

    ``intake_pool`` runs decoding and intake, ``scrape_pool`` metrics rendering, so that scrapers
    never take intake's threads; both are bounded by their size. More routes can be added to the
    router of the returned front's ``app``; ``POST``/``OPTIONS`` on ``/v1/traces`` and ``/v1/logs``
    are taken first.
    """
    cors = _Cors(cors_origins)
    token = metrics_token.encode()

    async def healthz(request: Request) -> Response:
        state = health()
        # A monitor or a restart policy reads the status code: anything but "ok" is unhealthy.
        return Response(json.dumps(state), 200 if state.get("status") == "ok" else 503, media_type="application/json")

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
            code, body, media_type, headers = otlp_error(
                status, f"unknown path {request.url.path[:100]!r} (use /v1/traces or /v1/logs)",
                content_type == "application/json", {"Connection": "close"})
            return Response(body, code, headers, media_type)
        return Response(_NOT_FOUND, status, media_type="text/plain")

    endpoints: dict[str, _OTLPEndpoint] = {}
    for signal in ("traces", "logs"):
        endpoint = _OTLPEndpoint(signal, intake, cors, intake_pool)
        endpoints[f"/v1/{signal}"] = endpoints[f"/v1/{signal}/"] = endpoint
    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"]),
                               Route("/metrics", metrics_page, methods=["GET"]), *extra_routes]
    return OTLPFront(Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}), endpoints)
