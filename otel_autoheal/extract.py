"""A finished trace → its exceptions (deduplicated), their preceding logs, folded by root cause."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from otel_autoheal.group.fingerprint import is_generic_type, is_wrapper_type, short_type
from otel_autoheal.model import ExceptionRecord, LogLine, TraceData
from otel_autoheal.otlp import LogData, SpanData
from otel_autoheal.source_context import SOURCE_CONTEXT_KEY, decode_source_context

__all__ = [
    "CLOCK_SKEW_NANOS",
    "Incident",
    "extract_exceptions",
    "fold_by_root_cause",
    "identity",
    "log_time",
    "preceding_logs",
    "same_exception",
]

#: Exception type used for error spans that carry no exception (e.g. an MCP ``isError`` result).
SPAN_ERROR_TYPE = "SpanError"
#: How far the clocks of one request's log records and span events may disagree: the Node SDK
#: anchors span times to a monotonic clock while log times come from millisecond ``Date.now()``;
#: logging bridges often keep only milliseconds while span events have nanoseconds.
CLOCK_SKEW_NANOS = 5_000_000
#: An observed time at most this far after a record's own time refines it (same clock, finer
#: resolution); a larger gap means a collector read it later, and the record's time is kept.
_OBSERVED_REFINES_NANOS = 2_000_000
#: Attributes of a log record that describe where the *log call* was made or the logging
#: machinery, not the failing operation.
_LOG_SITE_PREFIXES = ("code.", "thread.", "log.", "otel", "logger.", "exception.stacktrace")
#: Attributes an ancestor span (the HTTP server span, usually) lends to the incident's context
#: when the failing span itself lacks them.
_REQUEST_KEYS = (
    "http.request.method", "http.method", "http.route", "url.path", "url.query", "url.full", "url.scheme",
    "http.target", "http.url", "http.response.status_code", "http.status_code", "server.address", "server.port",
    "net.host.name", "net.peer.name", "client.address", "user_agent.original", "http.user_agent",
    "rpc.system", "rpc.service", "rpc.method", "messaging.system", "messaging.destination.name",
)


@dataclass
class Incident:
    """One root-cause exception and the exceptions of the same trace folded into it."""

    head: ExceptionRecord
    related: list[ExceptionRecord]


def _norm(text: str) -> str:
    return " ".join(text.split())[:2000]


def _on_span(span: SpanData, type_: str, message: str, stacktrace: str, time: int, origin: str) -> ExceptionRecord:
    """An exception located on ``span`` (its attributes copied: merging must not touch the span)."""
    return ExceptionRecord(
        type=type_,
        message=message,
        stacktrace=stacktrace,
        time_unix_nano=time,
        trace_id=span.trace_id,
        span_id=span.span_id,
        origin=origin,
        resource=span.resource,
        span_name=span.name,
        span_kind=span.kind,
        span_attributes=dict(span.attributes),
        parent_span_id=span.parent_span_id,
        span_start_unix_nano=span.start_unix_nano,
        ingest_trust=span.ingest_trust,
    )


def _from_event(span: SpanData, time: int, attrs: dict[str, object]) -> ExceptionRecord:
    record = _on_span(
        span,
        str(attrs.get("exception.type") or span.attributes.get("error.type") or ""),
        str(attrs.get("exception.message") or ""),
        str(attrs.get("exception.stacktrace") or ""),
        time or span.end_unix_nano,
        "span_event",
    )
    record.source_context = decode_source_context(attrs.get(SOURCE_CONTEXT_KEY))
    return record


def _synthesized(span: SpanData) -> ExceptionRecord:
    """An error status without any exception (e.g. an MCP ``isError`` result)."""
    return _on_span(
        span,
        str(span.attributes.get("error.type") or SPAN_ERROR_TYPE),
        span.status_message or f"{span.name} failed",
        "",
        span.end_unix_nano or span.start_unix_nano,
        "span_status",
    )


def _from_log(log: LogData, span: SpanData | None) -> ExceptionRecord:
    attrs = log.attributes
    message = str(attrs.get("exception.message") or "")
    # The log call's own attributes (structured fields) add to the context; where the log call
    # was made (code.*) is not where the operation failed.
    fields = {
        k: v for k, v in attrs.items() if not k.startswith(("exception.", *_LOG_SITE_PREFIXES)) and k != SOURCE_CONTEXT_KEY
    }
    return ExceptionRecord(
        type=str(attrs.get("exception.type") or ""),
        message=message if message or "exception.type" in attrs else log.body,
        stacktrace=str(attrs.get("exception.stacktrace") or ""),
        time_unix_nano=log.time_unix_nano,
        trace_id=log.trace_id,
        span_id=log.span_id,
        origin="log",
        resource=log.resource or (span.resource if span else {}),
        span_name=span.name if span else "",
        span_kind=span.kind if span else "",
        span_attributes={**(span.attributes if span else {}), **fields},
        parent_span_id=span.parent_span_id if span else "",
        span_start_unix_nano=span.start_unix_nano if span else 0,
        ingest_trust=log.ingest_trust,
        source_context=decode_source_context(attrs.get(SOURCE_CONTEXT_KEY)),
    )


def same_exception(a: ExceptionRecord, b: ExceptionRecord) -> bool:
    """Same type (short name) and message; a missing or generic type (Go's ``*fmt.wrapError``, a
    log bridge that sends no type) matches any type with the same message."""
    if short_type(a.type) != short_type(b.type) and not (is_generic_type(a.type) or is_generic_type(b.type)):
        return False
    ma, mb = _norm(a.message), _norm(b.message)
    return ma == mb or (bool(ma) and bool(mb) and (ma in mb or mb in ma))


def identity(record: ExceptionRecord) -> ExceptionRecord:
    """Only what ``same_exception`` and ``fold_by_root_cause`` read of ``record``: what the pipeline
    remembers of an exception it recorded, to recognise it (and fold with it) in late data."""
    return ExceptionRecord(
        type=record.type[:500],
        message=_norm(record.message),
        stacktrace="",
        time_unix_nano=record.time_unix_nano,
        trace_id=record.trace_id,
        span_id=record.span_id,
        origin=record.origin,
    )


#: Receiver verdicts from least to most trusted: a merged report keeps the least trusted one.
_TRUST_RANK = {"untrusted": 0, "": 1, "trusted": 2}


def _merge(keep: ExceptionRecord, other: ExceptionRecord) -> None:
    """Fold a duplicate report (span event ↔ log record) into ``keep``."""
    keep.ingest_trust = min(keep.ingest_trust, other.ingest_trust, key=lambda verdict: _TRUST_RANK.get(verdict, 0))
    if len(other.stacktrace) > len(keep.stacktrace):
        keep.stacktrace = other.stacktrace
    if not keep.source_context:
        keep.source_context = other.source_context
    if is_wrapper_type(keep.type) and not is_wrapper_type(other.type):
        keep.type = other.type  # Go: the logs SDK's unwrapped type says more than *fmt.wrapError
    if not keep.span_name and other.span_name:
        keep.span_name, keep.span_kind = other.span_name, other.span_kind
    for key, value in other.span_attributes.items():
        keep.span_attributes.setdefault(key, value)
    if not keep.message and other.message:
        keep.message = other.message
    keep.time_unix_nano = min(keep.time_unix_nano or other.time_unix_nano, other.time_unix_nano or keep.time_unix_nano)


def extract_exceptions(trace: TraceData) -> list[ExceptionRecord]:
    """Every distinct exception of ``trace``: span events and exception logs, each reported once."""
    found: list[ExceptionRecord] = []

    def add(record: ExceptionRecord) -> None:
        for existing in found:
            # The same exception on two spans (raised in one, escaping through its parent) is
            # kept twice here and folded later, so that the deepest span heads the incident.
            both_span_events = existing.origin == record.origin == "span_event"
            if same_exception(existing, record) and (
                existing.span_id == record.span_id or not existing.span_id or not record.span_id
                or (existing.stacktrace == record.stacktrace and not both_span_events)
            ):
                if existing.origin != "span_event" and record.origin == "span_event":
                    _merge(record, existing)
                    found[found.index(existing)] = record
                else:
                    _merge(existing, record)
                return
        found.append(record)

    for span in trace.spans.values():
        for name, time, attrs in span.events:
            if name == "exception":
                add(_from_event(span, time, dict(attrs)))
    for log in trace.logs:
        if log.has_exception:
            add(_from_log(log, trace.spans.get(log.span_id)))
    reported_spans = {r.span_id for r in found}
    for span in trace.spans.values():
        if span.is_error and not span.events and span.span_id not in reported_spans:
            found.append(_synthesized(span))
    return found


def _depth(span_id: str, spans: dict[str, SpanData]) -> int:
    depth, seen = 0, set()
    current = spans.get(span_id)
    while current is not None and current.parent_span_id and current.span_id not in seen:
        seen.add(current.span_id)
        depth += 1
        current = spans.get(current.parent_span_id)
    return depth


def _ancestors(span_id: str, spans: dict[str, SpanData]) -> set[str]:
    return set(_ancestors_ordered(span_id, spans))


def fold_by_root_cause(records: Sequence[ExceptionRecord], spans: dict[str, SpanData]) -> list[Incident]:
    """Fold symptoms into root causes: the deepest, earliest real exception heads each incident.

    A record joins an existing incident when it is the same exception on another span, when it
    sits on an ancestor span of the head (an upstream caller that failed because of it), or
    when it carries no exception of its own (an error status only).
    """
    ordered = sorted(
        records,
        key=lambda r: (r.origin == "span_status", -_depth(r.span_id, spans), r.time_unix_nano),
    )
    incidents: list[Incident] = []
    for record in ordered:
        home = None
        for incident in incidents:
            head = incident.head
            if (
                record.origin == "span_status"
                or record.span_id == head.span_id
                or record.span_id in _ancestors(head.span_id, spans)
                or same_exception(record, head)
            ):
                home = incident
                break
        if home is None:
            incidents.append(Incident(record, []))
        else:
            home.related.append(record)
    for incident in incidents:
        _inherit_request_context(incident, spans)
        incident.related = [r for r in incident.related if not _restates_head(r, incident.head, spans)]
    return incidents


def _restates_head(record: ExceptionRecord, head: ExceptionRecord, spans: dict[str, SpanData]) -> bool:
    """Folded into the head but not worth listing as a related error.

    The head's own exception seen again on other spans (it escaped through a parent, or a
    framework's middleware layers recorded it on their way out) is the same error; an error
    status without an exception on an ancestor span of the same service (the server span
    answering 500) is the request failing because of it, and lends the head its attributes.
    """
    if same_exception(record, head):
        return True
    return (
        record.origin == "span_status"
        and record.service_name == head.service_name
        and record.span_id in _ancestors(head.span_id, spans)
    )


def _inherit_request_context(incident: Incident, spans: dict[str, SpanData]) -> None:
    """Give the head the request attributes (method, route, query…) of its ancestors and duplicates.

    The failing span is often an inner one (a handler, a middleware layer) while the request's
    attributes sit on the server span above it. Only the head's own service lends attributes.
    """
    head = incident.head
    service = head.service_name
    # Only the same service's spans: a calling client's url.full is not this request's.
    sources = [spans[sid].attributes for sid in _ancestors_ordered(head.span_id, spans)
               if sid in spans and spans[sid].resource.get("service.name", service) == service]
    sources += [r.span_attributes for r in incident.related if r.service_name == service]
    for attributes in sources:
        for key in _REQUEST_KEYS:
            if key in attributes and key not in head.span_attributes:
                head.span_attributes[key] = attributes[key]


def _ancestors_ordered(span_id: str, spans: dict[str, SpanData]) -> list[str]:
    """Ancestor span ids, nearest first."""
    out: list[str] = []
    current = spans.get(span_id)
    while current is not None and current.parent_span_id and current.parent_span_id not in out:
        out.append(current.parent_span_id)
        current = spans.get(current.parent_span_id)
    return out


def _restates(log: LogData, record: ExceptionRecord) -> bool:
    if not _reports(log, record):
        return False
    body = _norm(log.body)
    return not body or _norm(record.message) in body


def _reports(log: LogData, record: ExceptionRecord) -> bool:
    """``log`` is an exception log record of this very exception."""
    return log.has_exception and same_exception(_from_log(log, None), record)


def log_time(log: LogData) -> int:
    """The finest trustworthy time of ``log``: the observed time when it refines the record's own time."""
    own, observed = log.time_unix_nano, log.observed_time_unix_nano
    if not own:
        return observed
    if observed and 0 <= observed - own < _OBSERVED_REFINES_NANOS:
        return observed
    return own


def _emitter(log: LogData) -> tuple[str, str, str]:
    """Whose records arrive in the order they were written: one logger (scope) of one instance.

    SDKs export a batch grouped by instrumentation scope, so records of two loggers written
    moments apart can arrive in either order.
    """
    return str(log.resource.get("service.name") or ""), str(log.resource.get("service.instance.id") or ""), log.scope


def _descendants(span_id: str, spans: dict[str, SpanData]) -> set[str]:
    return {sid for sid in spans if span_id in _ancestors(sid, spans)}


def _before_exception(record: ExceptionRecord, trace: TraceData) -> list[int]:
    """Indexes (arrival order) of the trace's logs written before ``record`` was raised.

    Three signals, strongest first: when the exception was also logged, everything its emitter
    (one logger of one instance) sent before that record came first (SDKs export in emission
    order, whatever the clocks say); a log of the request that failed (on the failing span, its
    ancestors, or a span it started, which ran before the throw) counts up to
    ``CLOCK_SKEW_NANOS`` after the exception's time; any other log must not be later than the
    exception.
    """
    cutoff = record.time_unix_nano or 2**63
    anchor = next((i for i, log in enumerate(trace.logs) if _reports(log, record)), None)
    on_path = (
        {record.span_id, *_ancestors(record.span_id, trace.spans), *_descendants(record.span_id, trace.spans)}
        if record.span_id else set()
    )
    out = []
    for index, log in enumerate(trace.logs):
        if anchor is not None and _emitter(log) == _emitter(trace.logs[anchor]):
            if index <= anchor:  # the exception log itself stays unless it only restates the error
                out.append(index)
            continue
        allowed = CLOCK_SKEW_NANOS if (log.span_id in on_path or not log.span_id) else 0
        if log_time(log) <= cutoff + allowed:
            out.append(index)
    return out


def _log_line(log: LogData) -> LogLine:
    return LogLine(
        time_unix_nano=log.time_unix_nano,
        severity=log.severity_text,
        body=log.body,
        trace_id=log.trace_id,
        span_id=log.span_id,
        attributes={
            k: v for k, v in log.attributes.items() if not k.startswith("exception.stacktrace") and k != SOURCE_CONTEXT_KEY
        },
    )


def preceding_logs(
    record: ExceptionRecord,
    trace: TraceData,
    limit: int,
    fallback: Iterable[LogData] = (),
    fallback_window_nanos: int = 0,
) -> list[LogLine]:
    """The last ``limit`` logs of the trace written before the exception, oldest first.

    Order: the finest time of each record (see ``log_time``), then arrival order, so records
    of the same millisecond keep the order they were written in. When the trace has no logs of
    its own, logs without a trace id from the same ``service.instance.id`` within
    ``fallback_window_nanos`` before the error are used instead; logs of *other* traces are
    never used.
    """
    cutoff = record.time_unix_nano or 2**63
    own = [(log_time(trace.logs[i]), i, trace.logs[i]) for i in _before_exception(record, trace)]
    if all(log.has_exception for log in trace.logs):
        # Only the error itself was logged in this trace (or it has no trace id at all).
        instance = record.resource.get("service.instance.id")
        if instance:
            own += [
                (log_time(log), len(trace.logs) + n, log) for n, log in enumerate(fallback)
                if not log.trace_id
                and log.resource.get("service.instance.id") == instance
                and cutoff - fallback_window_nanos <= log_time(log) <= cutoff + CLOCK_SKEW_NANOS
            ]
    # A log record that only restates this very exception is the error, not context before it;
    # one with its own words ("checkout failed") stays.
    kept = sorted((entry for entry in own if not _restates(entry[2], record)), key=lambda e: (e[0], e[1]))
    return [_log_line(log) for _, _, log in kept[-limit:]] if limit > 0 else []
