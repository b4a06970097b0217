"""uvicorn's httptools protocol with the read deadlines it lacks: request headers and request body.

uvicorn closes idle kept-alive connections (``timeout_keep_alive``) but has no deadline for a
connection that never completes its headers or its body, so a client could hold one open for
as long as it likes. Timers are armed only while a request is incomplete after a read, so a
request that arrives whole in one read costs no timer at all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from otel_autoheal.metrics import Metrics

__all__ = ["deadline_protocol"]

log = logging.getLogger("otel_autoheal.receive.http")


class _DeadlineProtocol(HttpToolsProtocol):
    #: Set by ``deadline_protocol``: seconds for the headers, seconds for the body, where to count.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    metrics: Metrics | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._in_body = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held by no request yet: the header deadline covers it.
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_headers:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)
        elif self._in_body and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()

    # Deadlines

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._in_headers:
            self._count("header_timeout")
            log.debug("closing %s: request headers incomplete after %ss (http_header_timeout)",
                      self.client, self.header_timeout)
            self._close_with_408(f"request headers not received within {self.header_timeout:g} s "
                                 "(http_header_timeout)")
        else:
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        self._count("body_timeout")
        log.debug("closing %s: request body incomplete after %ss (http_body_timeout)", self.client, self.body_timeout)
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
        else:
            # The application is waiting for more body: closing the transport wakes it with a
            # disconnect, and it never writes to a closed connection.
            self._close_with_408(f"request body not received within {self.body_timeout:g} s (http_body_timeout)")

    def _close_with_408(self, message: str) -> None:
        body = message.encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()

    def _count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("autoheal_requests_rejected_total", reason=reason)


def deadline_protocol(header_timeout: float, body_timeout: float, metrics: Metrics | None) -> type[HttpToolsProtocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)`` with these deadlines."""
    return type("AutohealHttpProtocol", (_DeadlineProtocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout, "metrics": metrics})
