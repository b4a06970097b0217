"""What the pipeline remembers of processed traces, so that late data is merged, never counted twice.

Behind a tail-sampling collector the logs of a failing trace arrive at once and its spans only
after the sampling decision, and a trace over ``max_trace_bytes`` is processed in parts: the
pipeline may see one trace several times. Of an earlier part it needs only

- the exceptions recorded from it, reduced to what recognising and folding read (``identity``),
- the parent link of every span (the tree that folding by root cause walks),
- the last log records (context shown before a late exception), long values cut,

never attributes, events or stack traces: those were rendered already. The cache is bounded by
count and by estimated bytes; the oldest entries are forgotten first (a trace estimated above the
byte bound by itself is not remembered, and the others stay).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields
from itertools import islice
from operator import attrgetter

from otel_autoheal._lru import BoundedLRU
from otel_autoheal.extract import identity
from otel_autoheal.model import ExceptionRecord, TraceData
from otel_autoheal.otlp import LogData, SpanData
from otel_autoheal.sizes import PARENT_BYTES, RECORD_BYTES, TRUNCATED_ITEMS, truncate_value, value_bytes

__all__ = ["RecentTraces", "Remembered"]

#: Parent links remembered per trace (the default ``max_records_per_trace``).
MAX_PARENTS = 5_000
#: Recorded exceptions remembered per trace.
MAX_RECORDED = 1_000
#: Longest log body or attribute value remembered (what an issue shows of a log line).
LOG_VALUE_CHARS = 4_000


@dataclass
class Remembered:
    """The part of a processed trace that late data is merged with."""

    parents: dict[str, str]
    recorded: list[ExceptionRecord]
    logs: list[LogData]
    bytes: int

    def merged_with(self, trace: TraceData) -> TraceData:
        """``trace`` joined with this earlier part: spans of the earlier part only as tree nodes."""
        spans = {
            span_id: SpanData(trace.trace_id, span_id, parent, "", "", 0, 0, False)
            for span_id, parent in self.parents.items()
        }
        spans.update(trace.spans)
        return TraceData(trace.trace_id, spans, self.logs + trace.logs)


#: ``LogData`` fields ``_context_log`` copies as they are (checked at import: a new field must be added here).
_KEPT_LOG_FIELDS = ("trace_id", "span_id", "time_unix_nano", "severity_number", "severity_text", "event_name",
                    "observed_time_unix_nano", "scope", "ingest_trust")
if {f.name for f in fields(LogData)} != {*_KEPT_LOG_FIELDS, "body", "attributes", "resource"}:
    raise AssertionError("LogData changed: say in recent._context_log what a remembered log line keeps of it")


def _context_log(record: LogData) -> tuple[LogData, int]:
    """A log line kept only as context, and its estimated bytes (``log_bytes``): no exception attributes (the
    exception was recorded), values cut.

    Built directly, without ``dataclasses.replace`` or walking values that need no cut: it runs
    for every log line of every failing trace, and almost none needs cutting.
    """
    body = record.body
    if len(body) > LOG_VALUE_CHARS:
        body = truncate_value(body, LOG_VALUE_CHARS)
    attributes = {}
    sizes = 0
    plain = len(record.attributes) <= TRUNCATED_ITEMS
    for key, value in record.attributes.items():
        if key.startswith("exception."):
            continue
        attributes[key] = value
        if type(value) is str:
            plain = plain and len(value) <= LOG_VALUE_CHARS
            sizes += sys.getsizeof(key) + sys.getsizeof(value)
        else:
            plain = plain and not isinstance(value, (str, dict, list, tuple))
            sizes += sys.getsizeof(key) + 32
        plain = plain and len(key) <= 200
    if plain:  # what truncate_value would return, and value_bytes count, for these attributes
        size = RECORD_BYTES + sys.getsizeof(body) + sys.getsizeof(attributes) + sizes
    else:
        attributes = truncate_value(attributes, LOG_VALUE_CHARS)
        size = RECORD_BYTES + sys.getsizeof(body) + value_bytes(attributes)
    kept = LogData(record.trace_id, record.span_id, record.time_unix_nano, record.severity_number,
                   record.severity_text, body, attributes, {}, event_name=record.event_name,
                   observed_time_unix_nano=record.observed_time_unix_nano, scope=record.scope,
                   ingest_trust=record.ingest_trust)
    return kept, size


def _remembered(trace: TraceData, recorded: Iterable[ExceptionRecord], keep_logs: int) -> Remembered:
    parents = {span.span_id: span.parent_span_id for span in islice(trace.spans.values(), MAX_PARENTS)}
    identities = [identity(r) for r in islice(recorded, MAX_RECORDED)]
    logs = sorted(trace.logs, key=_log_time)[-keep_logs:] if keep_logs else []
    size = RECORD_BYTES + sys.getsizeof(parents) + len(parents) * PARENT_BYTES
    size += sum(RECORD_BYTES + sys.getsizeof(r.type) + sys.getsizeof(r.message) for r in identities)
    kept = []
    for log in logs:
        line, line_bytes = _context_log(log)
        kept.append(line)
        size += line_bytes
    return Remembered(parents, identities, kept, size)


_log_time = attrgetter("time_unix_nano")


class RecentTraces:
    """Processed traces by trace id, oldest forgotten first beyond ``max_traces`` or ``max_bytes``.

    Used from the pipeline's thread only; ``bytes`` and ``len`` may be read from any thread.
    """

    def __init__(self, max_traces: int, max_bytes: int, keep_logs: int) -> None:
        self._keep_logs = keep_logs
        # Only taken and remembered again, never read in place: least recently used is oldest remembered.
        self._entries: BoundedLRU[str, Remembered] = BoundedLRU(max_entries=max_traces, max_bytes=max_bytes)

    @property
    def bytes(self) -> int:
        """Estimated bytes of the remembered traces."""
        return self._entries.bytes

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, trace_id: str) -> Remembered | None:
        """The earlier part of ``trace_id``, removed from the cache (it is remembered again, merged)."""
        return self._entries.pop(trace_id)

    def remember(self, trace: TraceData, recorded: Iterable[ExceptionRecord]) -> None:
        """Remember ``trace`` (replacing its earlier part); one costing over ``max_bytes`` alone is not kept."""
        if not trace.trace_id:
            return
        entry = _remembered(trace, recorded, self._keep_logs)
        self._entries.put(trace.trace_id, entry, entry.bytes)
