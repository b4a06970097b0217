"""OTel SDK objects → the pipeline's ``SpanData``/``LogData``, without an OTLP encoding round trip.

Mirrors what ``otel_autoheal.otlp`` keeps from OTLP messages: failed spans in full, every other
span only as a parent link (materialised by the assembler with ``light_span`` if its trace
failed), log records with their resource attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.trace import StatusCode

from otel_autoheal.otlp import (
    MAX_ATTRIBUTE_CHARS,
    MAX_BODY_CHARS,
    LogData,
    SpanData,
    cap_text,
    limit_for,
    severity_name,
)

__all__ = ["SpanLink", "logs_to_data", "split_spans"]

#: Logger names (instrumentation scopes) whose records are never fed back into the pipeline:
#: our own log lines would otherwise turn into issues about ourselves, possibly in a loop.
OWN_SCOPE_PREFIX = "otel_autoheal"

_ERROR = StatusCode.ERROR


def _value(value: Any, depth: int = 0, limit: int = MAX_ATTRIBUTE_CHARS) -> Any:
    """Attribute value as the OTLP decoder would produce it (lists, capped strings, hex bytes)."""
    if isinstance(value, str):
        return cap_text(value, limit)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:1024]).hex()
    if depth > 8:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {str(k): _value(v, depth + 1, limit) for k, v in list(value.items())[:1000]}
    if isinstance(value, (list, tuple)):
        return [_value(v, depth + 1, limit) for v in value[:1000]]
    return _value(str(value), depth + 1, limit)


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {str(k): _value(v, 0, limit_for(str(k))) for k, v in attributes.items()}


def _trace_hex(trace_id: int | None) -> str:
    return f"{trace_id:032x}" if trace_id else ""


def _span_hex(span_id: int | None) -> str:
    return f"{span_id:016x}" if span_id else ""


def _resource(resource: Any, cache: dict[int, dict[str, Any]]) -> dict[str, Any]:
    if resource is None:
        return {}
    key = id(resource)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _attributes(getattr(resource, "attributes", None))
    return found


#: A span that did not fail: (trace id hex, span id, parent span id), ids as raw bytes.
SpanLink = tuple[str, bytes, bytes]


def split_spans(spans: Sequence[Any]) -> tuple[list[SpanData], list[SpanLink]]:
    """SDK ``ReadableSpan`` objects → full ``SpanData`` for failed spans, parent links for the rest.

    Spans without a valid trace id are skipped.
    """
    resources: dict[int, dict[str, Any]] = {}
    failed: list[SpanData] = []
    links: list[SpanLink] = []
    last_trace, trace_id = 0, ""
    for span in spans:
        context = span.context
        if context is None or not context.trace_id:
            continue
        if context.trace_id != last_trace:  # spans of one trace usually come together
            last_trace, trace_id = context.trace_id, f"{context.trace_id:032x}"
        parent = span.parent
        parent_id = parent.span_id if parent is not None else 0
        events = span.events
        if span.status.status_code is not _ERROR and not (events and any(e.name == "exception" for e in events)):
            links.append((trace_id, context.span_id.to_bytes(8, "big"), parent_id.to_bytes(8, "big")))
            continue
        failed.append(SpanData(
            trace_id=trace_id,
            span_id=_span_hex(context.span_id),
            parent_span_id=_span_hex(parent_id),
            name=span.name,
            kind=span.kind.name if span.kind is not None else "",
            start_unix_nano=span.start_time or 0,
            end_unix_nano=span.end_time or 0,
            is_error=True,
            status_message=cap_text(str(span.status.description or ""), MAX_BODY_CHARS),
            attributes=_attributes(span.attributes),
            events=[(e.name, e.timestamp or 0, _attributes(e.attributes)) for e in events if e.name == "exception"],
            resource=_resource(span.resource, resources),
        ))
    return failed, links


def _body(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return cap_text(body, MAX_BODY_CHARS)
    return cap_text(json.dumps(_value(body), default=str), MAX_BODY_CHARS)


def logs_to_data(records: Sequence[Any]) -> Iterator[LogData]:
    """Yield ``LogData`` for SDK ``ReadableLogRecord`` objects, skipping otel-autoheal's own log lines."""
    resources: dict[int, dict[str, Any]] = {}
    for item in records:
        record = item.log_record
        scope = getattr(item, "instrumentation_scope", None)
        if scope is not None and (scope.name or "").startswith(OWN_SCOPE_PREFIX):
            continue
        severity = record.severity_number
        number = int(severity.value) if severity is not None else 0
        resource = getattr(item, "resource", None) or getattr(record, "resource", None)
        yield LogData(
            trace_id=_trace_hex(record.trace_id),
            span_id=_span_hex(record.span_id),
            time_unix_nano=record.timestamp or record.observed_timestamp or 0,
            severity_number=number,
            severity_text=severity_name(number, record.severity_text or ""),
            body=_body(record.body),
            attributes=_attributes(record.attributes),
            resource=_resource(resource, resources),
            event_name=record.event_name or "",
            observed_time_unix_nano=record.observed_timestamp or 0,
        )
