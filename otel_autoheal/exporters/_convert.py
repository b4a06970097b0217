"""OTel SDK objects → what the assembler takes, touching only what a decision needs.

Spans become an OTLP request for the service's own walk (``otlp.split_traces``, then
``Assembler.add_trace_request``): failed spans in full, every other span only its ids (a run of
them in the quiet index, materialised with ``light_span`` if its trace fails). Exception and
trace-less log records are decoded; every other record stays plain values (``SdkLogScope``) until
its trace fails, as OTLP log records stay undecoded in the service (``otlp.split_logs``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import StatusCode

from otel_autoheal.otlp import (
    MAX_ATTRIBUTE_CHARS,
    MAX_BODY_CHARS,
    STATUS_CODE_ERROR,
    LogData,
    RawScope,
    cap_text,
    limit_for,
    severity_name,
)

__all__ = ["SdkLogScope", "split_logs", "trace_request"]

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


def _fill(target: Any, value: Any, depth: int = 0) -> None:
    """Set an OTLP ``AnyValue`` from an SDK attribute value (the receiver's decoder caps lengths)."""
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (bytes, bytearray)):
        target.bytes_value = bytes(value)
    elif value is None:
        return
    elif depth > 8:
        target.string_value = "[nested too deep]"
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        for key, item in list(value.items())[:1000]:
            _fill(target.kvlist_value.values.add(key=str(key)).value, item, depth + 1)
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value[:1000]:
            _fill(target.array_value.values.add(), item, depth + 1)
    else:
        target.string_value = str(value)


def _fill_attributes(target: Any, attributes: Mapping[str, Any] | None) -> None:
    for key, value in (attributes or {}).items():
        _fill(target.add(key=str(key)).value, value)


def trace_request(spans: Sequence[Any]) -> ExportTraceServiceRequest:
    """SDK ``ReadableSpan`` objects → an OTLP request for the service's walk (``otlp.split_traces``).

    The service's own hot path then applies: a span that did not fail costs its raw ids in the
    assembler's quiet index (it is encoded with nothing else), a failed span (ERROR status or an
    ``exception`` event) is encoded in full with its resource. Spans without a valid trace id are
    skipped.
    """
    request = ExportTraceServiceRequest()
    scopes: dict[int, Any] = {}
    last_trace, raw_trace = 0, b""
    last_resource: Any = None
    add: Any = None
    for span in spans:
        context = span.context
        if context is None or not context.trace_id:
            continue
        if context.trace_id != last_trace:  # spans of one trace usually come together
            last_trace, raw_trace = context.trace_id, context.trace_id.to_bytes(16, "big")
        resource = span.resource
        if add is None or resource is not last_resource:
            last_resource = resource
            scope_spans = scopes.get(id(resource))
            if scope_spans is None:
                resource_spans = request.resource_spans.add()
                _fill_attributes(resource_spans.resource.attributes, getattr(resource, "attributes", None))
                scope_spans = scopes[id(resource)] = resource_spans.scope_spans.add()
            add = scope_spans.spans.add
        parent = span.parent
        parent_id = parent.span_id.to_bytes(8, "big") if parent is not None and parent.span_id else b""
        events = span.events
        status = span.status
        if status.status_code is not _ERROR and not (events and any(e.name == "exception" for e in events)):
            add(trace_id=raw_trace, span_id=context.span_id.to_bytes(8, "big"), parent_span_id=parent_id)
            continue
        full = add(trace_id=raw_trace, span_id=context.span_id.to_bytes(8, "big"), parent_span_id=parent_id,
                   name=span.name or "", kind=span.kind.value + 1 if span.kind is not None else 0,
                   start_time_unix_nano=span.start_time or 0, end_time_unix_nano=span.end_time or 0)
        if status.status_code is _ERROR:
            full.status.code = STATUS_CODE_ERROR
            full.status.message = str(status.description or "")
        _fill_attributes(full.attributes, span.attributes)
        for event in events:
            if event.name == "exception":
                encoded = full.events.add(name=event.name, time_unix_nano=event.timestamp or 0)
                _fill_attributes(encoded.attributes, event.attributes)
    return request


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
