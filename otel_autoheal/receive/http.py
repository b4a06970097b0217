"""OTLP/HTTP receiver (``POST /v1/traces``, ``/v1/logs``) plus ``/healthz`` and ``/metrics``.

uvicorn (httptools/llhttp parser) runs the Starlette application of ``_http_app`` on one event
loop in a background thread; the rest of the service stays threaded. The listening socket is
bound here, synchronously, so a busy port is a ``ConfigError`` naming the address and the setting.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from otel_autoheal.errors import ConfigError
from otel_autoheal.metrics import Metrics
from otel_autoheal.receive._http_app import build_app
from otel_autoheal.receive._http_protocol import deadline_protocol
from otel_autoheal.receive.intake import Intake

__all__ = ["HttpReceiver"]

log = logging.getLogger("otel_autoheal.receive.http")

#: Requests decoded at once. Decoding holds the GIL, so more threads would not go faster; the
#: journal's group commit is shared by whatever is waiting, so a few concurrent waiters suffice.
_INTAKE_THREADS = 8
#: Scrapes rendered at once (their own pool, so that scrapers never take intake's threads).
_SCRAPE_THREADS = 2
#: Seconds ``stop()`` lets requests in flight finish before their connections are dropped.
_GRACEFUL_STOP = 2.0
#: Seconds ``stop()`` waits for the server thread beyond the graceful period.
_JOIN_MARGIN = 3.0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError("otlp_http", f"cannot listen on {host}:{port}: {exc.strerror or exc} (free the port or "
                          "choose another address with --otlp-http / AUTOHEAL_OTLP_HTTP)") from None
    sock.setblocking(False)
    return sock


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
        self._socket = _listen(host, port)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=deadline_protocol(header_timeout, body_timeout, metrics),
            loop="auto",  # uvloop when installed (a dependency on Linux and macOS): cheaper thread hand-offs
            lifespan="off",
            ws="none",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("server", "otel-autoheal")],
            timeout_keep_alive=keepalive_timeout,  # type: ignore[arg-type]  # fractions work: it feeds call_later
            # uvicorn answers 503 once *this* many connections are open, the asking one included.
            limit_concurrency=max_connections + 1,
            timeout_graceful_shutdown=_GRACEFUL_STOP,  # type: ignore[arg-type]
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="autoheal-http", daemon=True)
        self._stop_lock = threading.Lock()
        self._stopped = False

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # uvicorn calls sys.exit on failures: log instead of dying silently
            log.exception("the OTLP/HTTP server stopped unexpectedly")

    def start(self) -> None:
        """Start serving; returns once the event loop accepts connections (within 10 s)."""
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._server.started:
            log.error("the OTLP/HTTP server did not start; see the errors above")

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), and join the thread. Idempotent."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_GRACEFUL_STOP + _JOIN_MARGIN)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(_JOIN_MARGIN)
            if self._thread.is_alive():
                log.warning("the OTLP/HTTP server thread did not stop within %.0f s", _GRACEFUL_STOP + 2 * _JOIN_MARGIN)
        self._socket.close()
        # Requests still decoding finish (they were acknowledged to nobody yet, but are cheap).
        self._intake_pool.shutdown(wait=True, cancel_futures=True)
        self._scrape_pool.shutdown(wait=False, cancel_futures=True)
