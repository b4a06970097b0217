"""OTLP/HTTP receiver (``POST /v1/traces``, ``/v1/logs``) plus ``/healthz`` and ``/metrics``.

uvicorn (httptools/llhttp parser) runs the Starlette application of ``_http_app`` on one event
loop in a background thread (``_server_thread``); the rest of the service stays threaded. The
listening socket is bound synchronously, so a busy port is a ``ConfigError`` naming the address
and the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.routing import BaseRoute

from otel_autoheal.metrics import Metrics
from otel_autoheal.receive._http_app import build_app
from otel_autoheal.receive._server_thread import ServerThread
from otel_autoheal.receive.intake import Intake

__all__ = ["HttpReceiver"]

#: Requests decoded at once. Decoding holds the GIL, so more threads would not go faster; the
#: journal's group commit is shared by whatever is waiting, so a few concurrent waiters suffice.
_INTAKE_THREADS = 8
#: Scrapes rendered at once (their own pool, so that scrapers never take intake's threads).
_SCRAPE_THREADS = 2
#: Seconds ``stop()`` lets requests in flight finish before their connections are dropped.
_GRACEFUL_STOP = 2.0


class HttpReceiver:
    """Serves OTLP/HTTP (protobuf and JSON, gzip/deflate) with CORS for configured browser origins."""

    def __init__(
        self, intake: Intake, metrics: Metrics, host: str, port: int, cors_origins: tuple[str, ...],
        health: Callable[[], dict[str, Any]], *, metrics_token: str = "", header_timeout: float = 10.0,
        body_timeout: float = 30.0, keepalive_timeout: float = 15.0, max_connections: int = 1000,
        extra_routes: Sequence[BaseRoute] = (),
    ) -> None:
        self._intake_pool = ThreadPoolExecutor(_INTAKE_THREADS, thread_name_prefix="autoheal-http-intake")
        self._scrape_pool = ThreadPoolExecutor(_SCRAPE_THREADS, thread_name_prefix="autoheal-http-scrape")
        self.app = build_app(intake, metrics, cors_origins, health, self._intake_pool, self._scrape_pool,
                             metrics_token, extra_routes)
        self._server = ServerThread(
            self.app, host, port, metrics, setting="otlp_http", hint="--otlp-http / AUTOHEAL_OTLP_HTTP",
            what="OTLP/HTTP server", thread_name="autoheal-http", header_timeout=header_timeout,
            body_timeout=body_timeout, keepalive_timeout=keepalive_timeout, max_connections=max_connections,
            graceful_stop=_GRACEFUL_STOP, backlog=2048,
        )
        self.port: int = self._server.port

    def start(self) -> None:
        """Start serving; returns once the event loop accepts connections (within 10 s)."""
        self._server.start()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), and join the thread. Idempotent."""
        self._server.stop()
        # Requests still decoding finish (they were acknowledged to nobody yet, but are cheap).
        self._intake_pool.shutdown(wait=True, cancel_futures=True)
        self._scrape_pool.shutdown(wait=False, cancel_futures=True)
