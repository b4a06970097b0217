"""What both receivers share: authentication, decoding, limits and hand-off to the assembler.

Nothing is acknowledged before its errors are durable: failed spans and exception logs are
committed to the intake journal first, and if that fails or takes longer than ``journal_timeout``
the request is refused retryably (``JournalUnavailable``, an ``Overloaded``: 503 / UNAVAILABLE).
The sender then retries the same data, which must not count twice:
- logs are journalled *before* they reach the assembler (which appends them), so a refused log
  export leaves nothing behind;
- spans are journalled right *after* the assembler's single pass over the export (which finds the
  failed ones; a second pass would cost the hot path dearly). A refused export's spans stay in
  the assembler, keyed by span id, so the retry replaces them; if their trace was processed
  meanwhile, the retry is late data whose exceptions are already recorded (``pipeline``).

Failed spans and exception logs are scrubbed here, in place, before they are journalled: no
unscrubbed byte reaches the disk, even if the service is killed before the pipeline runs. The
assembler holds the same (scrubbed) objects; the pipeline's own scrub of them changes nothing
(scrubbing is idempotent) and still covers the logs that precede an error, which stay unscrubbed
in memory only. Without the journal nothing is written here, so nothing is scrubbed twice.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from otel_autoheal._otlp_views import ERROR_STATUS_MARKER, EXCEPTION_EVENT_MARKER, LOG_EXCEPTION_MARKER, has_marker
from otel_autoheal.assemble import Assembler
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import (
    LogData,
    SpanData,
    journal_key,
    journal_payload,
    split_logs,
    split_traces,
)
from otel_autoheal.receive.journal import JournalUnavailable, JournalWriter
from otel_autoheal.scrub import Scrubber

__all__ = ["INFLIGHT_REQUESTS", "Intake", "IntakeResult", "bearer_matches"]

log = logging.getLogger("otel_autoheal.receive")


#: Encoded protobuf fragments without which no span can have failed: the event name
#: "exception" and ``Status.code = STATUS_CODE_ERROR`` (field 3, varint 2).
_FAILURE_MARKERS = (EXCEPTION_EVENT_MARKER, ERROR_STATUS_MARKER)


_PROTOBUF = "application/x-protobuf"


def _may_fail(body: bytes, content_type: str) -> bool:
    """False only when the protobuf body certainly holds no span event and no ERROR status.

    A marker found by chance inside an id only costs the slow path.
    """
    if not content_type.startswith("application/x-protobuf"):
        return True
    return any(has_marker(body, marker) >= 0 for marker in _FAILURE_MARKERS)


def bearer_matches(header: str | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant time)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


#: Request bodies decoded at once, in multiples of ``max_request_bytes``: decoding holds a body
#: about three times over (parsed message, decoded records, journal entries), so this bounds the
#: memory of decoding whatever the number of receiver threads (README, "Limits").
DECODE_BUDGET_REQUESTS = 1
#: Default of ``max_inflight_bytes`` in multiples of ``max_request_bytes``: request bodies held
#: at the receivers at once. One, like the decode budget: each more maximum-size request in flight
#: measured ≈ 30 MB more peak RSS (README, "Memory").
INFLIGHT_REQUESTS = 1


class _ByteBudget:
    """At most ``limit`` bytes of request bodies decoded at once; others wait for their turn."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def try_take(self, size: int) -> bool:
        """Count ``size`` bytes now if they fit (never waits); ``give_back`` them later."""
        with self._cond:
            if self._used + size > self._limit:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        with self._cond:
            self._used -= size
            self._cond.notify_all()

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



#: Scrubbed resource attribute maps remembered across requests (a sender's resource rarely changes).
_SCRUBBED_RESOURCES = 256


def _scrub_in_place(records: list[SpanData] | list[LogData], scrubber: Scrubber,
                    remembered: dict[Any, dict[str, Any]] | None = None) -> None:
    """Scrub every sender-chosen text of failed spans / exception logs (ids and numbers are ours to check).

    ``remembered`` maps resources already scrubbed (by their items) to the result, across calls.
    """
    # Records of one resource share its attribute map: scrub it once.
    resources: dict[int, dict[str, Any]] = {}
    remembered = {} if remembered is None else remembered

    def resource(attributes: dict[str, Any]) -> dict[str, Any]:
        key = id(attributes)
        if key not in resources:
            try:
                items: Any = tuple(attributes.items())
                scrubbed = remembered.get(items)
            except TypeError:  # a list or map value: not hashable, scrubbed every time
                items, scrubbed = None, None
            if scrubbed is None:
                scrubbed = scrubber.attributes(attributes)
                if items is not None:
                    if len(remembered) >= _SCRUBBED_RESOURCES:
                        remembered.clear()
                    remembered[items] = scrubbed
            resources[key] = dict(scrubbed)
        return resources[key]

    text = scrubber.text
    for record in records:
        record.attributes = scrubber.attributes(record.attributes)
        record.resource = resource(record.resource)
        if isinstance(record, SpanData):
            record.name = text(record.name)
            record.status_message = text(record.status_message)
            record.events = [(text(name), at, scrubber.attributes(attrs)) for name, at, attrs in record.events]
        else:
            record.body = text(record.body)
            record.severity_text = text(record.severity_text)
            record.event_name = text(record.event_name)
            record.scope = text(record.scope)


@dataclass(frozen=True)
class IntakeResult:
    accepted: int
    rejected: int
    message: str = ""


class Intake:
    """Decodes OTLP payloads and hands their records to the assembler."""

    def __init__(self, assembler: Assembler, metrics: Metrics, ingest_token: str, max_request_bytes: int,
                 journal: JournalWriter | None = None, token_sources: Mapping[str, str] | None = None, *,
                 scrubber: Scrubber, max_inflight_bytes: int = 0) -> None:
        self.assembler = assembler
        #: Scrubs failed spans and exception logs before they are journalled (``Pipeline.scrubber``).
        self.scrubber = scrubber
        #: Where failed spans and exception logs are written before they are acknowledged.
        self.journal = journal
        self.metrics = metrics
        self._token = ingest_token.encode()
        #: Every accepted token with the verdict it gives (``ingest_token`` means trusted).
        self._verdicts = [(token.encode(), verdict) for token, verdict in (token_sources or {}).items()]
        if ingest_token:
            self._verdicts.append((self._token, "trusted"))
        self.max_request_bytes = max_request_bytes
        self._decoding = _ByteBudget(DECODE_BUDGET_REQUESTS * max_request_bytes)
        self.max_inflight_bytes = max_inflight_bytes or INFLIGHT_REQUESTS * max_request_bytes
        self._inflight = _ByteBudget(self.max_inflight_bytes)
        self._scrubbed_resources: dict[Any, dict[str, Any]] = {}

    def authorized(self, header: str | None) -> bool:
        return not self._verdicts or self._token_verdict(header) is not None

    def _token_verdict(self, header: str | None) -> str | None:
        """The verdict of the token in ``header``, ``None`` when it carries none of ours."""
        found = None
        for token, verdict in self._verdicts:  # all compared: the time says nothing about which matched
            if bearer_matches(header, token) and found is None:
                found = verdict
        return found

    def trust(self, authorization: str | None, origin: str | None = None) -> str:
        """The receiver's verdict on a request (``ExceptionRecord.ingest_trust``), never the sender's word.

        A browser (any ``Origin`` header) is ``untrusted`` even with a token: a token shipped in
        page JavaScript is public. Otherwise the token decides: ``ingest_token`` is trusted,
        ``ingest_tokens`` map each of theirs; with no token configured there is no verdict (``""``:
        the sink falls back to ``autoheal.source``).
        """
        if origin:
            return "untrusted"
        return self._token_verdict(authorization) or ""

    def admit_bytes(self, size: int) -> bool:
        """Count ``size`` more request bytes in flight, or False (nothing counted) past ``max_inflight_bytes``.

        Never waits: a receiver refuses the request retryably instead, so that its body is let go
        rather than held in a queue (and ``release_bytes`` what it was admitted).
        """
        return self._inflight.try_take(size)

    def release_bytes(self, size: int) -> None:
        self._inflight.give_back(size)

    def reject(self, reason: str) -> None:
        self.metrics.inc("autoheal_requests_rejected_total", reason=reason)

    def traces_now(self, body: bytes, content_type: str, trust: str = "",
                   entries: list[tuple[str, str, str]] | None = None) -> IntakeResult | None:
        """Accept a trace export without ever waiting, or return None when that would wait.

        For an event loop: a protobuf body without failure markers (or any body without a
        journal) never waits for the journal, so only the assembler's lock could make it wait,
        and it is only tried. Given ``entries`` (a list to fill), a body that may fail is taken
        too: the journal entries of its failed spans (scrubbed) are appended, and the caller must
        ``journal_now`` them before it acknowledges (``autoheal_spans_received_total`` is counted
        there). Such a body is small (the caller's bound), so it is decoded outside the decode
        budget. Raises like ``traces``.
        """
        if self.journal is not None and (entries is None or not content_type.startswith(_PROTOBUF)) and _may_fail(
                body, content_type):
            return None  # (JSON decoding is slower: it takes a thread)
        self.assembler.check_capacity()
        split = split_traces(body, content_type, trust)
        failed = self.assembler.try_add_trace_request(split)
        if failed is None:
            return None
        accepted, rejected = split.accepted, split.rejected
        del split
        result = IntakeResult(accepted, rejected,
                              "spans without a valid 16-byte trace id were rejected" if rejected else "")
        if entries is None:
            self.metrics.inc("autoheal_spans_received_total", accepted)
        elif failed and self.journal is not None:
            _scrub_in_place(failed, self.scrubber, self._scrubbed_resources)
            entries += [(span.trace_id, "span", journal_payload(span)) for span in failed]
        return result

    async def journal_now(self, entries: list[tuple[str, str, str]], result: IntakeResult) -> None:
        """Journal what ``traces_now`` took (the event loop waits, no thread), then count its spans.

        Raises ``JournalUnavailable`` as ``traces`` does: the request must not be acknowledged.
        """
        if entries:
            assert self.journal is not None
            try:
                await self.journal.add_async(entries)
            except JournalUnavailable:
                self.metrics.inc("autoheal_journal_unavailable_total")
                raise
        self.metrics.inc("autoheal_spans_received_total", result.accepted)

    def logs_now(self, body: bytes, content_type: str, trust: str = "") -> IntakeResult | None:
        """Accept a logs export without ever waiting, or return None when that would wait.

        As ``traces_now``: a protobuf body without an ``exception.`` key anywhere (or any body
        without a journal) has nothing to journal, so only the assembler's lock could make it
        wait, and it is only tried. Raises like ``logs``.
        """
        protobuf = content_type.startswith("application/x-protobuf")
        maybe = not protobuf or has_marker(body, LOG_EXCEPTION_MARKER) >= 0
        if maybe and self.journal is not None:
            return None
        self.assembler.check_capacity()
        scopes, _failed, rejected = split_logs(body, content_type, trust, self.assembler.assembling)
        accepted = self.assembler.try_add_log_scopes(scopes)
        if accepted is None:
            return None
        self.metrics.inc("autoheal_logs_received_total", accepted)
        return IntakeResult(accepted, rejected,
                            "log records with a trace or span id of the wrong length were rejected" if rejected else "")

    def traces(self, body: bytes, content_type: str, trust: str = "") -> IntakeResult:
        """Decode and accept a trace export (raises ``OTLPDecodeError`` / ``Overloaded``); ``trust``
        is the receiver's verdict (``Intake.trust``) stamped on the failed spans."""
        self.assembler.check_capacity()
        with self._decoding.hold(len(body)):
            split = split_traces(body, content_type, trust)
            failed = self.assembler.add_trace_request(split)
            accepted, rejected = split.accepted, split.rejected
            del split
            entries: list[tuple[str, str, str]] = []
            if self.journal is not None:
                _scrub_in_place(failed, self.scrubber, self._scrubbed_resources)
                entries = [(span.trace_id, "span", journal_payload(span)) for span in failed]
        if entries:
            # After the assembler: the pass that finds the failed spans is the hot loop, run once.
            self._journal(entries)
        self.metrics.inc("autoheal_spans_received_total", accepted)
        return IntakeResult(accepted, rejected, "spans without a valid 16-byte trace id were rejected" if rejected else "")

    def logs(self, body: bytes, content_type: str, trust: str = "") -> IntakeResult:
        """Decode and accept a logs export (raises ``OTLPDecodeError`` / ``Overloaded``); ``trust``
        as for ``traces``."""
        self.assembler.check_capacity()
        with self._decoding.hold(len(body)):
            # Only exception records and trace-less ones are decoded; the others stay indexes
            # into ``body`` until their trace fails.
            scopes, failed, rejected = split_logs(body, content_type, trust, self.assembler.assembling)
        if self.journal is not None:
            # Before the assembler, which appends logs: a refused export leaves nothing behind that
            # the sender's retry would add a second time.
            _scrub_in_place(failed, self.scrubber, self._scrubbed_resources)
            self._journal([(journal_key(r), "log", journal_payload(r)) for r in failed])
        accepted = self.assembler.add_log_scopes(scopes)
        self.metrics.inc("autoheal_logs_received_total", accepted)
        return IntakeResult(accepted, rejected,
                            "log records with a trace or span id of the wrong length were rejected" if rejected else "")

    def _journal(self, entries: list[tuple[str, str, str]]) -> None:
        assert self.journal is not None
        try:
            self.journal.add(entries)
        except JournalUnavailable:
            self.metrics.inc("autoheal_journal_unavailable_total")
            raise
