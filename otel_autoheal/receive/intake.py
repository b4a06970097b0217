"""What both receivers share: authentication, decoding, limits and hand-off to the assembler."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from otel_autoheal.assemble import Assembler
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import count_log_records, decode_logs, decode_traces, iter_logs, journal_payload
from otel_autoheal.receive.journal import JournalWriter

__all__ = ["Intake", "IntakeResult", "bearer_matches"]

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


def bearer_matches(header: str | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant time)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


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

    def authorized(self, header: str | None) -> bool:
        return not self._token or bearer_matches(header, self._token)

    def reject(self, reason: str) -> None:
        self.metrics.inc("autoheal_requests_rejected_total", reason=reason)

    def traces(self, body: bytes, content_type: str) -> IntakeResult:
        """Decode and accept a trace export (raises ``OTLPDecodeError`` / ``Overloaded``)."""
        self.assembler.check_capacity()
        request = decode_traces(body, content_type)
        accepted, rejected, failed = self.assembler.add_trace_request(request, _may_fail(body, content_type))
        if failed and self.journal is not None:
            self.journal.add([(span.trace_id, "span", journal_payload(span)) for span in failed])
        self.metrics.inc("autoheal_spans_received_total", accepted)
        return IntakeResult(accepted, rejected, "spans without a valid 16-byte trace id were rejected" if rejected else "")

    def logs(self, body: bytes, content_type: str) -> IntakeResult:
        """Decode and accept a logs export (raises ``OTLPDecodeError`` / ``Overloaded``)."""
        self.assembler.check_capacity()
        request = decode_logs(body, content_type)
        records = list(iter_logs(request))
        rejected = count_log_records(request) - len(records)
        accepted = self.assembler.add_logs(records)
        if self.journal is not None:
            errors = [(r.trace_id, "log", journal_payload(r)) for r in records if r.has_exception]
            self.journal.add(errors)
        self.metrics.inc("autoheal_logs_received_total", accepted)
        return IntakeResult(accepted, rejected,
                            "log records with a trace or span id of the wrong length were rejected" if rejected else "")
