# Over 400 lines on purpose: every OTLP decoding rule (protobuf and JSON, lazy and full) in one file, so that both
# encodings stay decoded alike; its parts are small functions of the same data model.
"""OTLP request decoding (protobuf and OTLP/JSON) into the small records the pipeline keeps.

Only what later stages need is copied out of the protobuf messages, so a trace without errors
costs a few small tuples, not its full attribute maps.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_autoheal._otlp_views import (
    SPAN_RECORD_BYTES,
    link_record,
    log_scopes,
    raw_logs,
    resource_attributes,
    run_links,
    walk_spans,
)
from otel_autoheal.errors import OTLPDecodeError, PayloadTooLarge

__all__ = [
    "MAX_ATTRIBUTE_CHARS",
    "MAX_BODY_CHARS",
    "MAX_CONTEXT_CHARS",
    "SPAN_RECORD_BYTES",
    "STATUS_CODE_ERROR",
    "LogData",
    "RawScope",
    "SpanData",
    "TraceSplit",
    "attributes_to_dict",
    "cap_text",
    "decompress",
    "error_span",
    "from_journal",
    "journal_key",
    "journal_payload",
    "light_span",
    "limit_for",
    "loads_bounded",
    "log_data",
    "run_links",
    "split_logs",
    "split_traces",
]

#: OTLP span status code for ERROR (opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR).
STATUS_CODE_ERROR = 2

#: Longest string kept from an ``exception.*`` attribute value (stack traces); longer values are
#: cut with a marker.
MAX_ATTRIBUTE_CHARS = 200_000
#: Longest string kept from any other attribute value: an issue shows at most 400 characters of
#: one (4,000 of MCP tool arguments), so more would only cost memory and scrubbing time.
MAX_CONTEXT_CHARS = 4_000
#: Longest log body kept: what an issue shows of a log line or uses as an exception message.
MAX_BODY_CHARS = 8_000

#: Deepest JSON nesting accepted in an OTLP/JSON body. The envelope down to an attribute's value
#: takes 10 levels and each nested AnyValue 3-4 more (kvlistValue, values, KeyValue, value), so 128
#: admits about 29 nested maps, as many as the protobuf decoder admits (100 nested messages, 3 per
#: map). Deeper JSON is refused with a clear 400 instead of exhausting the stack.
MAX_JSON_DEPTH = 128

_SPAN_KINDS = {0: "", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


@dataclass(slots=True)
class SpanData:
    """The part of a span the pipeline keeps. ``attributes``/``events`` are filled only for error spans."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_unix_nano: int
    end_unix_nano: int
    is_error: bool
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    #: The receiver's verdict on the request this span came in (``ExceptionRecord.ingest_trust``);
    #: journalled with the span so that a replay keeps it.
    ingest_trust: str = ""


@dataclass(slots=True)
class LogData:
    """One log record with its resource attributes."""

    trace_id: str
    span_id: str
    time_unix_nano: int
    severity_number: int
    severity_text: str
    body: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    event_name: str = ""
    #: When the SDK or collector observed the record (0 = not sent); often a finer clock than
    #: ``time_unix_nano``, which bridges fill from the logging library's millisecond timestamp.
    observed_time_unix_nano: int = 0
    #: The instrumentation scope (usually the logger's name): SDKs export one batch grouped by
    #: scope, so arrival order is emission order only within one scope.
    scope: str = ""
    #: The receiver's verdict on the request this record came in (``ExceptionRecord.ingest_trust``).
    ingest_trust: str = ""

    @property
    def has_exception(self) -> bool:
        a = self.attributes
        return "exception.type" in a or "exception.message" in a or "exception.stacktrace" in a


_SPAN_FIELDS = tuple(f.name for f in dataclasses.fields(SpanData))
_LOG_FIELDS = tuple(f.name for f in dataclasses.fields(LogData))


def journal_payload(record: SpanData | LogData) -> str:
    """A failed span or exception log as JSON, for the intake journal."""
    fields = _SPAN_FIELDS if isinstance(record, SpanData) else _LOG_FIELDS
    return json.dumps({name: getattr(record, name) for name in fields}, default=str, separators=(",", ":"))


def journal_key(record: SpanData | LogData) -> str:
    """What a record is journalled (and later cleared) under: its trace id, or for a trace-less
    exception log a key of its own, so that processing one such log never clears another's entry
    (``journal_payload`` round-trips, so a replayed record has the same key)."""
    if record.trace_id:
        return record.trace_id
    return "orphan:" + hashlib.sha256(journal_payload(record).encode()).hexdigest()[:32]


def from_journal(kind: str, payload: str) -> SpanData | LogData:
    """Inverse of ``journal_payload``."""
    data = json.loads(payload)
    if kind == "span":
        data["events"] = [tuple(event) for event in data.get("events", [])]
        return SpanData(**data)
    return LogData(**data)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` without ever holding more than ``limit`` bytes (gzip-bomb safe)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"request body of {len(body)} bytes exceeds the limit of {limit} bytes")
        return body
    if encoding not in ("gzip", "deflate"):
        raise OTLPDecodeError(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or identity)")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OTLPDecodeError(f"invalid {encoding} body: {exc}") from exc
    if len(out) > limit or decoder.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
    return out


def _hex_ids_to_base64(node: Any, depth: int = 1) -> Any:
    """OTLP/JSON carries ids as hex; protobuf's JSON mapping expects base64 for bytes fields.

    The walk also enforces ``MAX_JSON_DEPTH`` (it visits every node anyway, so the check is free).
    """
    if depth > MAX_JSON_DEPTH:
        raise OTLPDecodeError(_TOO_DEEP)
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                if value == "":
                    continue
                try:
                    raw = bytes.fromhex(value)
                except ValueError as exc:
                    raise OTLPDecodeError(f"{key} {value[:40]!r} is not a hex string") from exc
                if len(raw) != _ID_FIELDS[key]:
                    raise OTLPDecodeError(f"{key} must be {_ID_FIELDS[key] * 2} hex characters, got {len(value)}")
                node[key] = base64.b64encode(raw).decode()
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _hex_ids_to_base64(item, depth + 1)
    return node


_TOO_DEEP = f"OTLP/JSON body is nested deeper than {MAX_JSON_DEPTH} levels"


def loads_bounded(body: bytes | str) -> Any:
    """``json.loads`` that turns nesting too deep for the interpreter's stack into ``OTLPDecodeError``.

    The C decoder stops at the recursion limit (about 1,000 levels) with ``RecursionError``; catching
    it costs nothing on the normal path, unlike a Python-level scan of the body.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise OTLPDecodeError(_TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise OTLPDecodeError(f"body is not valid JSON: {exc}") from exc


def _parse(message: Any, body: bytes, content_type: str) -> Any:
    ctype = (content_type or "application/x-protobuf").split(";")[0].strip().lower()
    if ctype == "application/json":
        doc = loads_bounded(body)
        if not isinstance(doc, dict):
            raise OTLPDecodeError("OTLP/JSON body must be a JSON object")
        try:
            json_format.ParseDict(_hex_ids_to_base64(doc), message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise OTLPDecodeError(f"body is not valid OTLP/JSON: {exc}") from exc
        except RecursionError:
            raise OTLPDecodeError(_TOO_DEEP) from None
    elif ctype in ("application/x-protobuf", "application/protobuf"):
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise OTLPDecodeError(f"body is not valid OTLP protobuf: {exc}") from exc
    else:
        raise OTLPDecodeError(
            f"unsupported Content-Type {content_type!r} (use application/x-protobuf or application/json)"
        )
    return message


def cap_text(text: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a marker saying how much was dropped."""
    if len(text) > limit:
        return text[:limit] + f"… [truncated {len(text) - limit} chars]"
    return text


def limit_for(key: str) -> int:
    """Longest string kept from the value of attribute ``key``."""
    return MAX_ATTRIBUTE_CHARS if key.startswith("exception.") else MAX_CONTEXT_CHARS


def any_value(value: AnyValue, depth: int = 0, limit: int = MAX_ATTRIBUTE_CHARS) -> Any:
    """Convert an OTLP ``AnyValue`` into plain Python (bytes as hex, strings cut at ``limit``, nesting capped)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return cap_text(value.string_value, limit)
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value[:1024].hex()
    if depth > 8:
        return "[nested too deep]"
    if kind == "array_value":
        return [any_value(v, depth + 1, limit) for v in value.array_value.values[:1000]]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1, limit) for kv in value.kvlist_value.values[:1000]}
    return None


def attributes_to_dict(attributes: Any) -> dict[str, Any]:
    """Convert a repeated ``KeyValue`` field into a dict (later keys win, as in the SDKs)."""
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in attributes:
        out[kv.key] = any_value(kv.value, 0, limit_for(kv.key))
    return out


def _id(raw: bytes, size: int) -> str:
    """Hex id, or "" for absent, all-zero or wrong-length ids (OTLP: not associated)."""
    if len(raw) != size or not any(raw):
        return ""
    return raw.hex()


def error_span(span: Any, trace_id: str, resource: dict[str, Any], ingest_trust: str = "") -> SpanData | None:
    """Full ``SpanData`` for a span with ERROR status or an ``exception`` event, else ``None``."""
    has_exception_event = False
    for event in span.events:
        if event.name == "exception":
            has_exception_event = True
            break
    if not has_exception_event and span.status.code != STATUS_CODE_ERROR:
        return None
    return SpanData(
        trace_id=trace_id,
        span_id=_id(span.span_id, 8),
        parent_span_id=_id(span.parent_span_id, 8),
        name=span.name,
        kind=_SPAN_KINDS.get(span.kind, ""),
        start_unix_nano=span.start_time_unix_nano,
        end_unix_nano=span.end_time_unix_nano,
        is_error=True,
        status_message=cap_text(span.status.message, MAX_BODY_CHARS),
        attributes=attributes_to_dict(span.attributes),
        events=[(e.name, e.time_unix_nano, attributes_to_dict(e.attributes)) for e in span.events if e.name == "exception"],
        resource=resource,
        ingest_trust=ingest_trust,
    )


def light_span(trace_id: str, span_id: bytes, parent_span_id: bytes) -> SpanData:
    """A span that did not fail: only its place in the tree is kept."""
    return SpanData(trace_id, _id(span_id, 8), _id(parent_span_id, 8), "", "", 0, 0, False)


_SEVERITY_NAMES = {range(1, 5): "TRACE", range(5, 9): "DEBUG", range(9, 13): "INFO",
                   range(13, 17): "WARN", range(17, 21): "ERROR", range(21, 25): "FATAL"}


def severity_name(number: int, text: str) -> str:
    if text:
        return text
    for numbers, name in _SEVERITY_NAMES.items():
        if number in numbers:
            return name
    return "UNSPECIFIED"


def log_data(record: Any, resource: dict[str, Any], scope: str, ingest_trust: str = "") -> LogData:
    """Decode one OTLP ``LogRecord`` (ids already checked by the caller)."""
    body = any_value(record.body, 0, MAX_BODY_CHARS) if record.HasField("body") else ""
    if not isinstance(body, str):
        body = cap_text(json.dumps(body, default=str), MAX_BODY_CHARS)
    return LogData(
        trace_id=_id(record.trace_id, 16),
        span_id=_id(record.span_id, 8),
        time_unix_nano=record.time_unix_nano or record.observed_time_unix_nano,
        severity_number=record.severity_number,
        severity_text=severity_name(record.severity_number, record.severity_text),
        body=body,
        attributes=attributes_to_dict(record.attributes),
        resource=resource,
        event_name=record.event_name,
        observed_time_unix_nano=record.observed_time_unix_nano,
        scope=scope,
        ingest_trust=ingest_trust,
    )


_EXCEPTION_KEYS = frozenset(("exception.type", "exception.message", "exception.stacktrace"))
_ZERO_TRACE = bytes(16)


def _protobuf(body: bytes, content_type: str, message: Any) -> bytes:
    """The body as protobuf: OTLP/JSON is decoded (into ``message``) and encoded again, so that
    both encodings take the same light walk (``_otlp_views``)."""
    ctype = (content_type or "application/x-protobuf").split(";")[0].strip().lower()
    if ctype in ("application/x-protobuf", "application/protobuf"):
        return body
    return _parse(message, body, content_type).SerializeToString()  # type: ignore[no-any-return]


@dataclass(slots=True)
class TraceSplit:
    """A trace export as the assembler takes it (``split_traces``)."""

    #: ``(raw trace id, run of records, spans in it)`` for the spans that did not fail (a run
    #: holds ``SPAN_RECORD_BYTES`` per span, without the trace id: see ``run_links``).
    runs: list[tuple[bytes, bytes, int]]
    #: ``(span, raw trace id, bytes of its resource if first held with it)`` for the failed spans.
    failed: list[tuple[SpanData, bytes, int]]
    accepted: int
    rejected: int


def split_traces(body: bytes, content_type: str, ingest_trust: str = "") -> TraceSplit:
    """Walk a trace export touching only what a decision needs (``_otlp_views.walk_spans``).

    Failed spans (ERROR status or an ``exception`` event) are decoded in full, stamped with
    ``ingest_trust``; every other span stays a record in a run of its trace. Spans without a valid
    16-byte trace id are left out and counted as rejected.
    """
    from otel_autoheal.sizes import value_bytes  # (sizes imports this module)

    walk = walk_spans(_protobuf(body, content_type, ExportTraceServiceRequest()))
    failed: list[tuple[SpanData, bytes, int]] = []
    resources: dict[int, dict[str, Any]] = {}
    for trace_id, span, resource_index in walk.failed:
        cost = 0
        resource = resources.get(resource_index)
        if resource is None:
            resource = resources[resource_index] = attributes_to_dict(
                resource_attributes(walk.resources[resource_index]))
            # Shared by the spans of this resource: counted once, where first held.
            cost = value_bytes(resource)
        data = error_span(span, trace_id.hex(), resource, ingest_trust)
        if data is None:  # (the view said it failed, so this cannot happen; kept as a link if it does)
            walk.runs.append((trace_id, link_record(span.span_id, span.parent_span_id), 1))
            continue
        failed.append((data, trace_id, cost))
    return TraceSplit(walk.runs, failed, walk.accepted, walk.rejected)


class RawScope:
    """What the undecoded log records of one scope share (``split_logs``): the request body they
    came in (protobuf; held instead of the parsed message, which costs about four times as much),
    where the scope is in it, the receiver's verdict, and ``charge``, what each record is counted
    as against the byte bounds."""

    __slots__ = ("_resource", "body", "charge", "resource_index", "scope", "scope_index", "trust")

    def __init__(self, body: bytes, indexes: tuple[int, int], scope: str, trust: str,
                 charge: int, resource: dict[str, Any] | None = None) -> None:
        self.body = body
        self.resource_index, self.scope_index = indexes
        self.scope = scope
        self.trust = trust
        self.charge = charge
        self._resource = resource

    def decode(self, index: int, parsed: dict[int, Any]) -> LogData:
        """The ``index``-th record of the scope, decoded; the body is parsed again (as a light view
        that holds each record's bytes), once per ``parsed`` (the caller's cache of parsed
        bodies, by ``id``, for one batch of decoding)."""
        view = parsed.get(id(self.body))
        if view is None:
            view = parsed[id(self.body)] = raw_logs(self.body)
        resource_logs = view.resource_logs[self.resource_index]
        if self._resource is None:
            self._resource = attributes_to_dict(resource_attributes(resource_logs.resource))
        record = LogRecord.FromString(resource_logs.scope_logs[self.scope_index].log_records[index])
        return log_data(record, self._resource, self.scope, self.trust)


def _has_exception_key(record: Any) -> bool:
    return any(kv.key in _EXCEPTION_KEYS for kv in record.attributes)


def split_logs(body: bytes, content_type: str, ingest_trust: str = "",
               assembling: Callable[[bytes], bool] = lambda raw: False,
               ) -> tuple[list[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]], list[LogData], int]:
    """Walk a logs export touching only what a decision needs; returns ``(scopes, exception logs, rejected)``.

    Each scope's list holds its records in order. Decoded into ``LogData``: exception records (an
    ``exception.type``, ``.message`` or ``.stacktrace`` attribute), trace-less records, and the
    records of traces that fail (an exception record in this export, or ``assembling(raw trace
    id)``: the assembler already holds the trace as failed), decoded now while the request is
    parsed. The others come as runs of one trace, ``(raw trace id, first index in the scope,
    records)``, undecoded (``RawScope.decode`` if their trace turns out to fail). Records with a
    trace or span id of the wrong length are left out and counted as rejected.
    """
    body = _protobuf(body, content_type, ExportLogsServiceRequest())
    views, candidates, accepted, rejected, raw = log_scopes(body)
    charge = len(body) // max(accepted + rejected, 1) + 64  # a record's share of the body, its entry
    parsed = {id(body): raw}
    resources: dict[int, dict[str, Any]] = {}
    failed: list[LogData] = []
    failing: set[bytes] = set()
    decoded: dict[tuple[int, int, int], LogData] = {}
    scope_names = {(view.resource_index, view.scope_index): view.scope for view in views}

    def resource(index: int) -> dict[str, Any]:
        if index not in resources:
            resources[index] = attributes_to_dict(resource_attributes(raw.resource_logs[index].resource))
        return resources[index]

    for (resource_index, scope_index, index), record in candidates.items():
        if not _has_exception_key(record) or len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
            continue  # (the walk counts the malformed ones as rejected)
        data = log_data(record, resource(resource_index), scope_names[resource_index, scope_index], ingest_trust)
        decoded[resource_index, scope_index, index] = data
        failed.append(data)
        failing.add(record.trace_id)
    scopes: list[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]] = []
    for view in views:
        where = (view.resource_index, view.scope_index)
        scope = RawScope(body, where, view.scope, ingest_trust, charge, resources.get(view.resource_index))
        records: list[LogData | tuple[bytes, int, int]] = []
        for trace_id, first, count in view.items:
            if trace_id and trace_id not in failing and trace_id != _ZERO_TRACE and not assembling(trace_id):
                records.append((trace_id, first, count))
                continue
            for index in range(first, first + count):
                data = decoded.get((*where, index)) or scope.decode(index, parsed)
                records.append(data)
        scopes.append((scope, records))
    return scopes, failed, rejected
