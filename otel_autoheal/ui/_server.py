"""The page on an address of its own (``ui_address``): a second uvicorn server with only the page's routes."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from otel_autoheal.errors import ConfigError
from otel_autoheal.metrics import Metrics
from otel_autoheal.receive._http_protocol import deadline_protocol

__all__ = ["UiServer"]

log = logging.getLogger("otel_autoheal.ui")

#: Seconds ``stop()`` lets requests in flight finish.
_GRACEFUL_STOP = 1.0
#: Connections served at once; the page is for a few people.
_MAX_CONNECTIONS = 100


class UiServer:
    """Serves ``routes`` on ``host:port``; the socket is bound here, so a busy port is a ConfigError."""

    def __init__(self, routes: Sequence[BaseRoute], host: str, port: int, metrics: Metrics,
                 header_timeout: float, body_timeout: float, keepalive_timeout: float) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._socket = socket.create_server((host, port), family=family, backlog=128)
        except OSError as exc:
            raise ConfigError("ui_address", f"cannot listen on {host}:{port}: {exc.strerror or exc} (free the port "
                              "or choose another address with --ui / AUTOHEAL_UI_ADDRESS)") from None
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=list(routes)), http=deadline_protocol(header_timeout, body_timeout, metrics),
            loop="auto", lifespan="off", ws="none", interface="asgi3", log_config=None, access_log=False,
            proxy_headers=False, server_header=False, headers=[("server", "otel-autoheal")],
            timeout_keep_alive=keepalive_timeout,  # type: ignore[arg-type]
            limit_concurrency=_MAX_CONNECTIONS + 1, timeout_graceful_shutdown=_GRACEFUL_STOP,  # type: ignore[arg-type]
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="autoheal-ui", daemon=True)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # uvicorn calls sys.exit on failures: log instead of dying silently
            log.exception("the page's server stopped unexpectedly")

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_GRACEFUL_STOP + 3.0)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(3.0)
        self._socket.close()
