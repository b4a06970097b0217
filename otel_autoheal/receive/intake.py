"""What both receivers share: authentication, decoding, limits and hand-off to the assembler."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from otel_autoheal.assemble import Assembler
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import decode_logs, decode_traces, iter_logs, iter_spans

__all__ = ["Intake", "IntakeResult"]

log = logging.getLogger("otel_autoheal.receive")


@dataclass(frozen=True)
class IntakeResult:
    accepted: int
    rejected: int
    message: str = ""


class Intake:
    """Decodes OTLP payloads and hands their records to the assembler."""

    def __init__(self, assembler: Assembler, metrics: Metrics, ingest_token: str, max_request_bytes: int) -> None:
        self.assembler = assembler
        self.metrics = metrics
        self._token = ingest_token.encode()
        self.max_request_bytes = max_request_bytes

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
        request = decode_traces(body, content_type)
        total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        accepted = self.assembler.add_spans(iter_spans(request))
        self.metrics.inc("autoheal_spans_received_total", accepted)
        rejected = total - accepted
        return IntakeResult(accepted, rejected, "spans without a valid 16-byte trace id were rejected" if rejected else "")

    def logs(self, body: bytes, content_type: str) -> IntakeResult:
        """Decode and accept a logs export (raises ``OTLPDecodeError`` / ``Overloaded``)."""
        self.assembler.check_capacity()
        request = decode_logs(body, content_type)
        accepted = self.assembler.add_logs(iter_logs(request))
        self.metrics.inc("autoheal_logs_received_total", accepted)
        return IntakeResult(accepted, 0)
