"""What both receivers share: authentication, decoding, limits and hand-off to the assembler."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from otel_autoheal.assemble import Assembler
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import decode_logs, decode_traces, iter_logs, journal_payload
from otel_autoheal.receive.journal import JournalWriter

__all__ = ["Intake", "IntakeResult"]

log = logging.getLogger("otel_autoheal.receive")


#: Encoded protobuf fragments without which no span can have failed: the event name
#: "exception" and ``Status.code = STATUS_CODE_ERROR`` (field 3, varint 2).
_FAILURE_MARKERS = (b"exception", b"\x18\x02")


def _may_fail(body: bytes, content_type: str) -> bool:
    """False only when the protobuf body certainly holds no span event and no ERROR status.

    Span events other than "exception" don't matter, so the event-name marker is enough;
    a marker found by chance inside an id only costs the slow path.
    """
    if not content_type.startswith("application/x-protobuf"):
        return True
    return any(marker in body for marker in _FAILURE_MARKERS)


#: Request bodies decoded at once, in multiples of ``max_request_bytes``: decoding holds a body
#: about three times over (parsed message, decoded records, journal entries), so this bounds the
#: memory of decoding whatever the number of receiver threads (README, "Limits").
DECODE_BUDGET_REQUESTS = 1


class _ByteBudget:
    """At most ``limit`` bytes of request bodies decoded at once; others wait for their turn."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        size = min(size, self._limit)
        with self._cond:
            while self._used + size > self._limit:
                self._cond.wait()
            self._used += size
        try:
            yield
        finally:
            with self._cond:
                self._used -= size
                self._cond.notify_all()


#: Log records decoded and handed to the assembler at a time.
LOG_SLICE = 1_000


@dataclass(frozen=True)
class IntakeResult:
    accepted: int
    rejected: int
    message: str = ""


class Intake:
    """Decodes OTLP payloads and hands their records to the assembler."""

    def __init__(self, assembler: Assembler, metrics: Metrics, ingest_token: str, max_request_bytes: int,
                 journal: JournalWriter | None = None) -> None:
        self.assembler = assembler
        #: Where failed spans and exception logs are written before they are acknowledged.
        self.journal = journal
        self.metrics = metrics
        self._token = ingest_token.encode()
        self.max_request_bytes = max_request_bytes
        self._decoding = _ByteBudget(DECODE_BUDGET_REQUESTS * max_request_bytes)

    def authorized(self, header: str | None) -> bool:
        if not self._token:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token)

    def reject(self, reason: str) -> None:
        self.metrics.inc("autoheal_requests_rejected_total", reason=reason)

    def traces(self, body: bytes, content_type: str) -> IntakeResult:
        """Decode and accept a trace export (raises ``OTLPDecodeError`` / ``Overloaded``)."""
        self.assembler.check_capacity()
        with self._decoding.hold(len(body)):
            request = decode_traces(body, content_type)
            accepted, rejected, failed = self.assembler.add_trace_request(request, _may_fail(body, content_type))
            del request
            journaled = failed if self.journal is not None else []
            entries = [(span.trace_id, "span", journal_payload(span)) for span in journaled]
        if entries and self.journal is not None:
            self.journal.add(entries)
        self.metrics.inc("autoheal_spans_received_total", accepted)
        return IntakeResult(accepted, rejected, "spans without a valid 16-byte trace id were rejected" if rejected else "")

    def logs(self, body: bytes, content_type: str) -> IntakeResult:
        """Decode and accept a logs export (raises ``OTLPDecodeError`` / ``Overloaded``)."""
        self.assembler.check_capacity()
        accepted = 0
        entries: list[tuple[str, str, str]] = []
        with self._decoding.hold(len(body)):
            records = iter_logs(decode_logs(body, content_type))
            # In slices, so that records beyond the assembler's bounds are dropped as they are
            # decoded instead of all being materialised first (a request of tiny records would
            # otherwise expand to many times its size).
            while batch := list(islice(records, LOG_SLICE)):
                accepted += self.assembler.add_logs(batch)
                if self.journal is not None:
                    entries += [(r.trace_id, "log", journal_payload(r)) for r in batch if r.has_exception]
                del batch
        if self.journal is not None:
            self.journal.add(entries)
        self.metrics.inc("autoheal_logs_received_total", accepted)
        return IntakeResult(accepted, 0)
