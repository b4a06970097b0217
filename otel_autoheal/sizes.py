"""Cheap estimates of what a held record costs in memory, for the byte bounds, and truncation.

The estimates are CPython object sizes (``sys.getsizeof`` is O(1) for strings and containers)
summed over the values a record holds; they run only for failed spans and log records, never
for the spans that did not fail (those cost a constant, ``LINK_BYTES``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from otel_autoheal.otlp import LogData, SpanData

__all__ = [
    "LIGHT_SPAN_BYTES",
    "LINK_BYTES",
    "PARENT_BYTES",
    "RECORD_BYTES",
    "TRUNCATED_VALUE_CHARS",
    "log_bytes",
    "span_bytes",
    "truncate_log",
    "truncate_span",
    "truncate_value",
    "value_bytes",
]

#: A span that did not fail, held as a parent link: two 8-byte ``bytes`` ids (41 bytes each in
#: CPython) and a slot in a dict that grows by doubling.
LINK_BYTES = 150
#: A span that did not fail in a finished trace: a ``SpanData`` with hex ids and empty containers.
LIGHT_SPAN_BYTES = 450
#: A remembered parent link (hex span id → hex parent id: two 16-character strings + a dict slot).
PARENT_BYTES = 200
#: The fixed part of a held ``SpanData``/``LogData``: the slots object, its id strings, empty containers.
RECORD_BYTES = 400
#: Longest string kept from a value of an error record that had to be truncated (trace over
#: ``max_trace_bytes``); stack traces keep their head and their end.
TRUNCATED_VALUE_CHARS = 4_000
#: Longest stack trace kept in such a record (head and end: Python prints the innermost frame last).
TRUNCATED_STACK_CHARS = 32_000
#: Entries kept per attribute map or list of a truncated record.
TRUNCATED_ITEMS = 64


def value_bytes(value: Any) -> int:
    """Estimated bytes held by a decoded attribute value (strings, numbers, lists, maps)."""
    if isinstance(value, str):
        return sys.getsizeof(value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(sys.getsizeof(k) + value_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(value_bytes(v) for v in value)
    return 32


def span_bytes(span: SpanData) -> int:
    """Estimated bytes of a failed span, without its resource (shared by the spans of a request)."""
    size = RECORD_BYTES + sys.getsizeof(span.name) + sys.getsizeof(span.status_message) + value_bytes(span.attributes)
    for _name, _time, attributes in span.events:
        size += 64 + value_bytes(attributes)
    return size


def log_bytes(record: LogData) -> int:
    """Estimated bytes of a log record, without its resource (shared by the records of a request)."""
    return RECORD_BYTES + sys.getsizeof(record.body) + value_bytes(record.attributes)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    return f"{text[:head]}\n[… {len(text) - limit} characters truncated]\n{text[head - limit:]}"


def truncate_value(value: Any, limit: int = TRUNCATED_VALUE_CHARS, depth: int = 0) -> Any:
    """``value`` with every string cut to ``limit`` characters and containers to ``TRUNCATED_ITEMS``."""
    if isinstance(value, str):
        return _cut(value, limit)
    if depth > 4:
        return "[nested too deep]"
    if isinstance(value, dict):
        return {
            k[:200]: truncate_value(v, TRUNCATED_STACK_CHARS if k == "exception.stacktrace" else limit, depth + 1)
            for k, v in list(value.items())[:TRUNCATED_ITEMS]
        }
    if isinstance(value, (list, tuple)):
        return [truncate_value(v, limit, depth + 1) for v in value[:TRUNCATED_ITEMS]]
    return value


def _exception_keys_first(attributes: dict[str, Any]) -> dict[str, Any]:
    """The ``exception.*`` keys must survive the item cap: extraction reads them."""
    first = {k: v for k, v in attributes.items() if k.startswith("exception.")}
    return {**first, **{k: v for k, v in attributes.items() if k not in first}}


def truncate_span(span: SpanData) -> SpanData:
    """A copy of a failed span whose long values are cut (what an error costs beyond ``max_trace_bytes``)."""
    return replace(
        span,
        name=span.name[:TRUNCATED_VALUE_CHARS],
        status_message=_cut(span.status_message, TRUNCATED_VALUE_CHARS),
        attributes=truncate_value(span.attributes),
        events=[(name, time, truncate_value(_exception_keys_first(attributes)))
                for name, time, attributes in span.events[:TRUNCATED_ITEMS]],
    )


def truncate_log(record: LogData) -> LogData:
    """A copy of a log record whose long body and attribute values are cut."""
    return replace(
        record,
        body=_cut(record.body, TRUNCATED_VALUE_CHARS),
        attributes=truncate_value(_exception_keys_first(record.attributes)),
    )
