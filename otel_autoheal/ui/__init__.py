"""The web page of ``otel-autoheal serve``: the groups, their history and their way to a fix.

Served on the OTLP/HTTP port by default (http://127.0.0.1:4318/), or on ``ui_address``, or not
at all (``ui = false``). ``_pages`` has the routes, ``_facts`` reads the store, ``_fixway`` the
GitHub sink's tables, ``_access`` decides who may look, ``_markdown`` and ``_svg`` draw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from otel_autoheal.config import Config, parse_hostport
from otel_autoheal.metrics import Metrics
from otel_autoheal.receive._server_thread import ServerThread
from otel_autoheal.sinks.base import Sink
from otel_autoheal.ui._access import Access
from otel_autoheal.ui._facts import PageStore
from otel_autoheal.ui._pages import Pages

__all__ = ["WebUI"]

log = logging.getLogger("otel_autoheal.ui")

#: Seconds ``stop()`` lets requests in flight finish.
_GRACEFUL_STOP = 1.0
#: Connections served at once on ``ui_address``; the page is for a few people.
_MAX_CONNECTIONS = 100


class WebUI:
    """The page's routes, and its own server when ``ui_address`` is set."""

    def __init__(self, config: Config, store: PageStore, sink: Sink, metrics: Metrics,
                 health: Callable[[], dict[str, Any]]) -> None:
        key, address = ("ui_address", config.ui_address) if config.ui_address else ("otlp_http", config.otlp_http)
        self.host, port = parse_hostport(key, address)
        self.access = Access(self.host, config.ui_token)
        self.pages = Pages(store, sink, metrics, health, self.access, config.trace_url_template)
        self.server: ServerThread | None = None
        if config.ui_address:
            try:
                self.server = ServerThread(
                    Starlette(routes=self.pages.routes()), self.host, port, metrics, setting="ui_address",
                    hint="--ui / AUTOHEAL_UI_ADDRESS", what="page's server", thread_name="autoheal-ui",
                    header_timeout=config.http_header_timeout, body_timeout=config.http_body_timeout,
                    keepalive_timeout=config.http_keepalive_timeout, max_connections=_MAX_CONNECTIONS,
                    graceful_stop=_GRACEFUL_STOP, backlog=128,
                )
            except BaseException:
                self.pages.close()
                raise
        if not self.access.open:
            log.warning("the web page is off on %s: the address is not loopback and no ui_token is set "
                        "(set ui_token / AUTOHEAL_UI_TOKEN, or serve it on 127.0.0.1 with ui_address)", address)

    def otlp_routes(self) -> list[BaseRoute]:
        """The routes to add to the OTLP/HTTP app (none when the page has its own address)."""
        return [] if self.server is not None else self.pages.routes()

    def url(self, otlp_http_port: int) -> str:
        port = self.server.port if self.server is not None else otlp_http_port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    def start(self) -> None:
        if self.server is not None:
            self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.pages.close()
