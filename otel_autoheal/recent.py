"""What the pipeline remembers of processed traces, so that late data is merged, never counted twice.

Behind a tail-sampling collector the logs of a failing trace arrive at once and its spans only
after the sampling decision, and a trace over ``max_trace_bytes`` is processed in parts: the
pipeline may see one trace several times. Of an earlier part it needs only

- the exceptions recorded from it, reduced to what recognising and folding read (``identity``),
- the parent link of every span (the tree that folding by root cause walks),
- the last log records (context shown before a late exception), long values cut,

never attributes, events or stack traces: those were rendered already. The cache is bounded by
count and by estimated bytes; the oldest entries are forgotten first.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from otel_autoheal.extract import identity
from otel_autoheal.model import ExceptionRecord, TraceData
from otel_autoheal.otlp import LogData, SpanData
from otel_autoheal.sizes import PARENT_BYTES, RECORD_BYTES, log_bytes, truncate_value

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


def _context_log(record: LogData) -> LogData:
    """A log line kept only as context: no exception attributes (the exception was recorded), values cut."""
    attributes = {k: v for k, v in record.attributes.items() if not k.startswith("exception.")}
    return replace(record, body=truncate_value(record.body, LOG_VALUE_CHARS),
                   attributes=truncate_value(attributes, LOG_VALUE_CHARS), resource={})


def _remembered(trace: TraceData, recorded: Iterable[ExceptionRecord], keep_logs: int) -> Remembered:
    parents: dict[str, str] = {}
    for span in trace.spans.values():
        if len(parents) >= MAX_PARENTS:
            break
        parents[span.span_id] = span.parent_span_id
    identities = [identity(r) for r in recorded][:MAX_RECORDED]
    logs = sorted(trace.logs, key=lambda log: log.time_unix_nano)[-keep_logs:] if keep_logs else []
    logs = [_context_log(log) for log in logs]
    size = (
        RECORD_BYTES + sys.getsizeof(parents) + len(parents) * PARENT_BYTES
        + sum(RECORD_BYTES + sys.getsizeof(r.type) + sys.getsizeof(r.message) for r in identities)
        + sum(log_bytes(log) for log in logs)
    )
    return Remembered(parents, identities, logs, size)


class RecentTraces:
    """Processed traces by trace id, oldest forgotten first beyond ``max_traces`` or ``max_bytes``.

    Used from the pipeline's thread only; ``bytes`` and ``len`` may be read from any thread.
    """

    def __init__(self, max_traces: int, max_bytes: int, keep_logs: int) -> None:
        self._max_traces = max_traces
        self._max_bytes = max_bytes
        self._keep_logs = keep_logs
        self._entries: OrderedDict[str, Remembered] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, trace_id: str) -> Remembered | None:
        """The earlier part of ``trace_id``, removed from the cache (it is remembered again, merged)."""
        entry = self._entries.pop(trace_id, None)
        if entry is not None:
            self.bytes -= entry.bytes
        return entry

    def remember(self, trace: TraceData, recorded: Iterable[ExceptionRecord]) -> None:
        if not trace.trace_id:
            return
        entry = _remembered(trace, recorded, self._keep_logs)
        self.take(trace.trace_id)
        self._entries[trace.trace_id] = entry
        self.bytes += entry.bytes
        while self._entries and (len(self._entries) > self._max_traces or self.bytes > self._max_bytes):
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.bytes
