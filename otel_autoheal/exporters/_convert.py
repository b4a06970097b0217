"""OTel SDK objects → what the assembler takes, touching only what a decision needs.

Spans become what the service's own walk of an OTLP export (``otlp.split_traces``) gives
``Assembler.add_trace_request``, built directly: failed spans in full, every other span only its
ids (a run of encoded records in the quiet index, materialised with ``light_span`` if its trace
fails). Exception and trace-less log records are decoded; every other record stays plain values
(``SdkLogScope``) until its trace fails, as OTLP log records stay undecoded in the service
(``otlp.split_logs``).
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import StatusCode

from otel_autoheal.otlp import (
    MAX_ATTRIBUTE_CHARS,
    MAX_BODY_CHARS,
    LogData,
    RawScope,
    SpanData,
    TraceSplit,
    cap_text,
    limit_for,
    severity_name,
)
from otel_autoheal.sizes import value_bytes

__all__ = ["SdkLogScope", "split_logs", "trace_split"]

#: Logger names (instrumentation scopes) whose records are never fed back into the pipeline:
#: our own log lines would otherwise turn into issues about ourselves, possibly in a loop.
OWN_SCOPE_PREFIX = "otel_autoheal"

_ERROR = StatusCode.ERROR
_EXCEPTION_KEYS = frozenset(("exception.type", "exception.message", "exception.stacktrace"))
#: What an undecoded SDK log record costs besides its body and attributes: its slots in
#: ``SdkLogScope.fields``, its ids and timestamps (ints), its entry in the split batch. With it,
#: the estimate (588 bytes) matched what tracemalloc measured held (570) for log lines of 2
#: attributes and a 40-character body.
SDK_RECORD_BYTES = 300
#: Estimated bytes per attribute of an undecoded SDK log record (key, value, dict slot).
SDK_ATTRIBUTE_BYTES = 100
#: Values kept per undecoded SDK log record, one after the other in ``SdkLogScope.fields``.
_FIELDS = 9


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


#: A span that did not fail as ``_otlp_views.walk_spans`` keeps it in a run (``SPAN_RECORD_BYTES``):
#: span id, the parent span id's tag and the parent span id; for a root span, the last 8 bytes of the
#: trace id, the span id's tag and the span id.
_ROOT_RECORD = struct.Struct(">8s2sQ")
_CHILD_RECORD = struct.Struct(">Q2sQ")
_SPAN_ID_TAG, _PARENT_TAG = b"\x12\x08", b"\x22\x08"


def _failed_span(span: Any, trace_hex: str, parent_id: int, resource: dict[str, Any], error: bool) -> SpanData:
    """A failed SDK span as ``otlp.error_span`` decodes it from an OTLP export."""
    status = span.status
    kind = span.kind
    return SpanData(
        trace_id=trace_hex,
        span_id=_span_hex(span.context.span_id),
        parent_span_id=_span_hex(parent_id),
        name=span.name or "",
        kind=kind.name if kind is not None else "",
        start_unix_nano=span.start_time or 0,
        end_unix_nano=span.end_time or 0,
        is_error=True,
        status_message=cap_text(str(status.description or ""), MAX_BODY_CHARS) if error else "",
        attributes=_attributes(_plain(span.attributes)),
        events=[(event.name, event.timestamp or 0, _attributes(_plain(event.attributes)))
                for event in span.events if event.name == "exception"],
        resource=resource,
    )


def trace_split(spans: Sequence[Any]) -> TraceSplit:
    """SDK ``ReadableSpan`` objects → ``Assembler.add_trace_request`` input, as ``otlp.split_traces`` makes it.

    A span that did not fail becomes its encoded record in a run of its trace (consecutive spans
    of one trace and resource, as a scope of an OTLP export is cut); a failed span (ERROR status
    or an ``exception`` event) becomes ``SpanData``, its resource counted where first held. Spans
    without a valid trace id are skipped. Built here rather than encoding an OTLP request for
    ``split_traces`` to parse again: that round trip cost 3.6 µs a span of ``bench/exporter_cost.py``'s
    load, this walk 1.4 (2.5 while it still read the ``events`` property, a copy under a lock).
    """
    runs: list[list[Any]] = []  # [raw trace id, records, count]
    failed: list[tuple[SpanData, bytes, int]] = []
    open_runs: dict[int, list[Any]] = {}  # id(resource) → [raw trace id, records, count] of its last run
    resources: dict[int, dict[str, Any]] = {}
    accepted = 0
    last_trace, raw_trace = 0, b""
    last_resource: Any = None
    current: list[Any] | None = None
    root, child = _ROOT_RECORD.pack, _CHILD_RECORD.pack
    for span in spans:
        context = span.context
        if context is None or not context.trace_id:
            continue
        accepted += 1
        trace_id = context.trace_id
        if trace_id != last_trace:  # spans of one trace usually come together
            last_trace, raw_trace = trace_id, trace_id.to_bytes(16, "big")
        resource = span.resource
        if resource is not last_resource:
            last_resource = resource
            current = open_runs.get(id(resource))
        parent = span.parent
        parent_id = parent.span_id if parent is not None else 0
        try:
            events = span._events  # (the ``events`` property copies them into a new tuple under a lock)
        except AttributeError:
            events = span.events
        error = span.status.status_code is _ERROR
        if error or (events and any(e.name == "exception" for e in events)):
            key = id(resource)
            open_runs.pop(key, None)  # a failed span ends its scope's run, as in an OTLP export
            current = None
            cost = 0
            attributes = resources.get(key)
            if attributes is None:
                attributes = resources[key] = _resource(resource, {})
                cost = value_bytes(attributes)  # shared by the resource's failed spans: counted once
            failed.append((_failed_span(span, f"{trace_id:032x}", parent_id, attributes, error), raw_trace, cost))
            continue
        record = (child(context.span_id, _PARENT_TAG, parent_id) if parent_id
                  else root(raw_trace[8:], _SPAN_ID_TAG, context.span_id))
        if current is not None and current[0] == raw_trace:
            current[1].append(record)
            current[2] += 1
        else:
            current = open_runs[id(resource)] = [raw_trace, [record], 1]
            runs.append(current)
    return TraceSplit([(raw, b"".join(records), count) for raw, records, count in runs], failed, accepted, 0)


def _body(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return cap_text(body, MAX_BODY_CHARS)
    return cap_text(json.dumps(_value(body), default=str), MAX_BODY_CHARS)


def _plain(attributes: Any) -> Any:
    """The dict inside the SDK's ``BoundedAttributes`` (iterating the wrapper takes a lock and a copy)."""
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def _fields(record: Any) -> tuple[Any, ...]:
    """What ``LogData`` needs of an SDK log record, ``_FIELDS`` values: no object of its own."""
    severity = record.severity_number
    return (record.trace_id, record.span_id, record.timestamp, record.observed_timestamp,
            int(severity.value) if severity is not None else 0, record.severity_text, record.body,
            _plain(record.attributes) or None, record.event_name)


def _log_data(fields: Sequence[Any], resource: dict[str, Any], scope: str) -> LogData:
    trace_id, span_id, timestamp, observed, number, severity_text, body, attributes, event_name = fields
    return LogData(
        trace_id=_trace_hex(trace_id),
        span_id=_span_hex(span_id),
        time_unix_nano=timestamp or observed or 0,
        severity_number=number,
        severity_text=severity_name(number, severity_text or ""),
        body=_body(body),
        attributes=_attributes(attributes),
        resource=resource,
        event_name=event_name or "",
        observed_time_unix_nano=observed or 0,
        scope=scope,
    )


class SdkLogScope(RawScope):
    """The undecoded SDK log records of one resource and instrumentation scope in one export batch.

    The assembler holds runs ``(raw trace id, first index, records)`` in its quiet index, as for records
    received over OTLP, and calls ``decode`` only if the trace fails; ``charge`` is the scope's
    average estimated bytes per record (set once the batch is split). The records are kept as
    plain values in one flat list, not as the SDK's objects: those are about six objects a record
    (record, API record, attributes wrapper, context…) that the host's garbage collector would
    walk again and again during ``trace_wait``, which measured as much as all our other work.
    """

    __slots__ = ("fields", "sdk_resource")

    def __init__(self, scope: str, sdk_resource: Any) -> None:
        super().__init__(b"", (0, 0), scope, "", SDK_RECORD_BYTES)
        self.sdk_resource = sdk_resource
        self.fields: list[Any] = []

    def decode(self, index: int, parsed: dict[int, Any]) -> LogData:
        """The ``index``-th record, decoded. ``parsed`` is the caller's cache for one batch of decoding
        (by ``id``): here it shares the resource attributes of one SDK ``Resource`` between scopes."""
        if self._resource is None:
            self._resource = _resource(self.sdk_resource, parsed)
        at = index * _FIELDS
        return _log_data(self.fields[at:at + _FIELDS], self._resource, self.scope)


def _sdk_record_bytes(fields: tuple[Any, ...]) -> int:
    body, attributes = fields[6], fields[7]
    return (SDK_RECORD_BYTES + (sys.getsizeof(body) if isinstance(body, str) else SDK_ATTRIBUTE_BYTES)
            + (len(attributes) * SDK_ATTRIBUTE_BYTES if attributes else 0))


LogScopes = list[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]]


def split_logs(records: Sequence[Any]) -> LogScopes:
    """SDK ``ReadableLogRecord`` objects → ``Assembler.add_log_scopes`` input, skipping otel-autoheal's own log lines.

    Exception records (an ``exception.type``, ``.message`` or ``.stacktrace`` attribute) and
    trace-less records are decoded now; every other record joins a run ``(raw trace id, first index, records)`` into
    its ``SdkLogScope``, decoded only if its trace fails. Records keep their order within a scope.
    """
    resources: dict[int, dict[str, Any]] = {}
    scopes: dict[tuple[int, str], tuple[SdkLogScope, list[LogData | tuple[bytes, int, int]]]] = {}
    charges: dict[int, int] = {}
    for item in records:
        scope = getattr(item, "instrumentation_scope", None)
        name = (scope.name or "") if scope is not None else ""
        if name.startswith(OWN_SCOPE_PREFIX):
            continue
        record = item.log_record
        resource = getattr(item, "resource", None) or getattr(record, "resource", None)
        key = (id(resource), name)
        found = scopes.get(key)
        if found is None:
            found = scopes[key] = (SdkLogScope(name, resource), [])
        holder, out = found
        fields = _fields(record)
        trace_id, attributes = fields[0], fields[7]
        if not trace_id or (attributes and not _EXCEPTION_KEYS.isdisjoint(attributes)):
            out.append(_log_data(fields, _resource(resource, resources), name))
            continue
        raw, at = trace_id.to_bytes(16, "big"), len(holder.fields) // _FIELDS
        last = out[-1] if out else None
        if type(last) is tuple and last[0] == raw and last[1] + last[2] == at:
            out[-1] = (raw, last[1], last[2] + 1)  # a run of one trace's records, as the OTLP walk gives
        else:
            out.append((raw, at, 1))
        holder.fields += fields
        charges[id(holder)] = charges.get(id(holder), 0) + _sdk_record_bytes(fields)
    for holder, _ in scopes.values():
        if holder.fields:
            holder.charge = -(-charges[id(holder)] * _FIELDS // len(holder.fields))
    split: LogScopes = [(holder, out) for holder, out in scopes.values()]
    return split
