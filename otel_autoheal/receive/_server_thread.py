"""One hardened uvicorn server on a thread of its own: the OTLP/HTTP receiver's, and the page's on ``ui_address``.

The listening socket is bound synchronously in the constructor, so a busy port is a ``ConfigError``
naming the address and the setting before anything starts.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from otel_autoheal.errors import ConfigError
from otel_autoheal.metrics import Metrics
from otel_autoheal.receive._http_protocol import deadline_protocol

__all__ = ["ServerThread"]

log = logging.getLogger("otel_autoheal.receive.http")

#: Seconds ``stop()`` waits for the server thread beyond the graceful period.
_JOIN_MARGIN = 3.0
#: Seconds ``start()`` waits for the event loop to accept connections.
_START_WAIT = 10.0


def _listen(host: str, port: int, backlog: int, setting: str, hint: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        raise ConfigError(setting, f"cannot listen on {host}:{port}: {exc.strerror or exc} (free the port or "
                          f"choose another address with {hint})") from None
    sock.setblocking(False)
    return sock


class ServerThread:
    """Serves ``app`` on ``host:port`` with the header/body/keep-alive deadlines and a connection cap.

    ``setting`` and ``hint`` (e.g. ``--otlp-http / AUTOHEAL_OTLP_HTTP``) name the address in the busy-port error;
    ``what`` names the server in log lines, ``thread_name`` its thread.
    """

    def __init__(
        self, app: ASGIApp, host: str, port: int, metrics: Metrics, *, setting: str, hint: str, what: str,
        thread_name: str, header_timeout: float, body_timeout: float, keepalive_timeout: float,
        max_connections: int, graceful_stop: float, backlog: int,
    ) -> None:
        self._what = what
        self._graceful_stop = graceful_stop
        self._socket = _listen(host, port, backlog, setting, hint)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
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
            timeout_graceful_shutdown=graceful_stop,  # type: ignore[arg-type]
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._stop_lock = threading.Lock()
        self._stopped = False

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # uvicorn calls sys.exit on failures: log instead of dying silently
            log.exception("the %s stopped unexpectedly", self._what)

    def start(self) -> None:
        """Start serving; returns once the event loop accepts connections (within 10 s)."""
        self._thread.start()
        deadline = time.monotonic() + _START_WAIT
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._server.started:
            log.error("the %s did not start; see the errors above", self._what)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), join the thread, close the socket. Idempotent."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self._graceful_stop + _JOIN_MARGIN)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(_JOIN_MARGIN)
            if self._thread.is_alive():
                log.warning("the %s thread did not stop within %.0f s", self._what,
                            self._graceful_stop + 2 * _JOIN_MARGIN)
        self._socket.close()
