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

__all__ = ["MAX_HEADER_BYTES", "deadline_protocol"]

#: Largest request line plus headers accepted; more gets 431 (the parser itself has no bound, so
#: endless headers would grow memory until the header deadline).
MAX_HEADER_BYTES = 64 * 1024

log = logging.getLogger("otel_autoheal.receive.http")


class _HeadersTooLarge(Exception):
    """Raised inside the parser to stop a request whose headers exceed ``MAX_HEADER_BYTES``."""


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
        self._header_bytes = 0  # raw bytes read while the headers are incomplete
        self._parsed_header_bytes = 0  # the request line's URL and the headers parsed so far
        self._oversized = False

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
        if not self._in_body:
            self._header_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._count("headers_too_large")
            self._close_with(431, "Request Header Fields Too Large",
                             f"request line and headers exceed {MAX_HEADER_BYTES} bytes")
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
        self._parsed_header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._parsed_header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_header_bytes += len(name) + len(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._header_bytes = 0
        if self._parsed_header_bytes > MAX_HEADER_BYTES:
            # Raising from a callback makes the parser fail; uvicorn then calls send_400_response.
            self._oversized = True
            raise _HeadersTooLarge
        self._in_headers = False
        self._in_body = True
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # The parser refused the request (malformed, or a smuggling shape such as Content-Length
        # with Transfer-Encoding, or two Content-Lengths); uvicorn answers 400 and closes.
        if self._oversized:
            self._count("headers_too_large")
            self._close_with(431, "Request Header Fields Too Large",
                             f"request line and headers exceed {MAX_HEADER_BYTES} bytes")
            return
        self._count("malformed_http")
        super().send_400_response(msg)

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
            self._close_with(408, "Request Timeout",
                             f"request headers not received within {self.header_timeout:g} s (http_header_timeout)")
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
            self._close_with(408, "Request Timeout",
                             f"request body not received within {self.body_timeout:g} s (http_body_timeout)")

    def _close_with(self, status: int, reason: str, message: str) -> None:
        body = message.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (status, reason.encode(), len(body), body))
        self.transport.close()

    def _count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("autoheal_requests_rejected_total", reason=reason)


def deadline_protocol(header_timeout: float, body_timeout: float, metrics: Metrics | None) -> type[HttpToolsProtocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)`` with these deadlines."""
    return type("AutohealHttpProtocol", (_DeadlineProtocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout, "metrics": metrics})
