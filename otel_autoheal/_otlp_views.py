"""Light views of OTLP protobuf exports: what the receivers' decisions need, in bulk, without a
Python object per span or log record.

An export is parsed with message types built here at import (not generated code) that declare
only the ids, the event names and the status code; everything else is an unknown field, which
upb skips at the cost of a copy. The view then drops its unknown fields and is serialised again
one scope at a time: what is left of an ordinary span (no event, a status other than ERROR) is a
30- to 44-byte record (trace id, span id, parent span id, the status if sent), and a
regular expression cuts the records of each scope into *runs*, consecutive records of one trace,
in C. A run keeps 18 bytes of each record (``SPAN_RECORD_BYTES``: span id and parent id with the
tag between them, or for a root span the end of its trace id, a tag and its span id): the trace
id, which every record repeated, is the run's key, so a span held costs 18 bytes, not 30–44,
and a run's records are counted and cut by its length. Python code runs per run (per trace, not
per span) and per record that is anything else (a failure candidate, a malformed id): those are
decoded one by one, and failed spans and exception logs in full (``Span``/``LogRecord`` parsed from
their own bytes in the request).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_autoheal.errors import OTLPDecodeError

__all__ = [
    "ERROR_STATUS_MARKER",
    "EXCEPTION_EVENT_MARKER",
    "LOG_EXCEPTION_MARKER",
    "SPAN_RECORD_BYTES",
    "LogScopeView",
    "SpanWalk",
    "has_marker",
    "link_record",
    "log_scopes",
    "raw_logs",
    "resource_attributes",
    "run_links",
    "walk_spans",
]

#: Encoded bytes without which no span has an ``exception`` event: the event's name field (2, length 9).
EXCEPTION_EVENT_MARKER = b"\x12\x09exception"
#: Encoded bytes without which no span has ERROR status: ``Status.code`` (field 3) = 2.
ERROR_STATUS_MARKER = b"\x18\x02"
#: Bytes without which no log record has an ``exception.*`` attribute key.
LOG_EXCEPTION_MARKER = b"exception."

_F = descriptor_pb2.FieldDescriptorProto
_BYTES, _MESSAGE, _ENUM_AS_INT = _F.TYPE_BYTES, _F.TYPE_MESSAGE, _F.TYPE_INT32


def _classes(package: str, messages: dict[str, list[tuple[str, int, int, bool, str]]]) -> dict[str, Any]:
    """Message classes from ``{message: [(field, number, type, repeated, message type)]}``, in their own pool."""
    proto = descriptor_pb2.FileDescriptorProto(name=f"autoheal/{package}.proto", package=package, syntax="proto3")
    for name, fields in messages.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            added = message.field.add(name=field_name, number=number, type=kind,
                                      label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                added.type_name = f".{package}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in messages}


#: Searching the body for failure markers first (to leave the event names and the status out of
#: the view when they are absent) costs more than it saves: the two bytes of an ERROR status
#: recur by chance in most large bodies, and the search alone takes half as long as the parse.
_SPAN_CLASSES = _classes("autoheal_spans", {
    "Request": [("resource_spans", 1, _MESSAGE, True, "ResourceSpans")],
    "ResourceSpans": [("scope_spans", 2, _MESSAGE, True, "ScopeSpans")],
    "ScopeSpans": [("spans", 2, _MESSAGE, True, "Span")],
    "Span": [("trace_id", 1, _BYTES, False, ""), ("span_id", 2, _BYTES, False, ""),
             ("parent_span_id", 4, _BYTES, False, ""), ("events", 11, _MESSAGE, True, "Event"),
             ("status", 15, _MESSAGE, False, "Status")],
    "Event": [("name", 2, _F.TYPE_STRING, False, "")],
    "Status": [("code", 3, _ENUM_AS_INT, False, "")],
})
_SPAN_VIEW, _SPAN_RECORD_VIEW = _SPAN_CLASSES["Request"], _SPAN_CLASSES["Span"]
#: Each span as its own encoded bytes (for the full decode of a failed one), each resource too.
_RAW_SPANS = _classes("autoheal_raw_spans", {
    "Request": [("resource_spans", 1, _MESSAGE, True, "ResourceSpans")],
    "ResourceSpans": [("resource", 1, _BYTES, False, ""), ("scope_spans", 2, _MESSAGE, True, "ScopeSpans")],
    "ScopeSpans": [("spans", 2, _BYTES, True, "")],
})["Request"]
_LOG_IDS = _classes("autoheal_log_ids", {
    "Request": [("resource_logs", 1, _MESSAGE, True, "ResourceLogs")],
    "ResourceLogs": [("scope_logs", 2, _MESSAGE, True, "ScopeLogs")],
    "ScopeLogs": [("log_records", 2, _MESSAGE, True, "LogRecord")],
    "LogRecord": [("trace_id", 9, _BYTES, False, ""), ("span_id", 10, _BYTES, False, "")],
})
_LOG_RECORD_VIEW = _LOG_IDS["LogRecord"]
_RAW_LOGS = _classes("autoheal_raw_logs", {
    "Request": [("resource_logs", 1, _MESSAGE, True, "ResourceLogs")],
    "ResourceLogs": [("resource", 1, _BYTES, False, ""), ("scope_logs", 2, _MESSAGE, True, "ScopeLogs")],
    "ScopeLogs": [("scope", 1, _MESSAGE, False, "Scope"), ("log_records", 2, _BYTES, True, "")],
    "Scope": [("name", 1, _F.TYPE_STRING, False, "")],
})["Request"]

#: (The repetitions are possessive: nothing to backtrack into, and a run of a hundred thousand
#: records then costs no memory per record.)
#: An ordinary span record in a scope's re-serialised view: tag 2, its length, trace id, span id,
#: a parent span id but for a root span, and a status that is not ERROR if the exporter sent one
#: (the official SDKs send an UNSET status with every span: empty, or code OK). A record must end
#: where the next one (tag 2) or the scope ends: the view is serialised canonically, so what can
#: follow a prefix of a longer record (a parent, events, a status) never starts with that tag.
_STATUS = rb"(?:\x7a\x00|\x7a\x02\x18\x01)?+"
_RECORD_END = rb"(?=\x12|\Z)"
_RECORD_LENGTHS = rb"[\x1c\x1e\x20\x26\x28\x2a]"  # 28 or 38 bytes, + 2 or 4 with a status
#: Consecutive ordinary span records of one trace.
_SPAN_RUN = re.compile(rb"\x12" + _RECORD_LENGTHS + rb"\x0a\x10(.{16})\x12\x08.{8}(?:\x22\x08.{8})?+" + _STATUS
                       + _RECORD_END + rb"(?:\x12" + _RECORD_LENGTHS + rb"\x0a\x10\1\x12\x08.{8}(?:\x22\x08.{8})?+"
                       + _STATUS + _RECORD_END + rb")*+", re.S)
#: What a run keeps of each of its records: the ``SPAN_RECORD_BYTES`` before the status. A whole
#: record's length tells a root span (28, 30 or 32 bytes) from a child (38, 40 or 42), and the match
#: of ``_SPAN_RUN`` is a sequence of whole records, so each search finds the next record where it
#: begins (a status, left to the search to pass, holds no tag 2: a tenth less time than matching it).
_SPAN_RECORD_TAIL = re.compile(rb"\x12(?:[\x1c\x1e\x20]\x0a\x10.{8}|[\x26\x28\x2a]\x0a\x10.{18})(.{18})", re.S)
#: A record of a run: span id, tag 4 (parent span id), parent span id; or, for a root span, the
#: last 8 bytes of its trace id, tag 2 (span id), span id.
SPAN_RECORD_BYTES = 18
_PARENT_TAG = 0x22
#: Consecutive log records of one trace with a span id (tag 2, length 28, fields 9 and 10).
_LOG_RUN = re.compile(rb"\x12\x1c\x4a\x10(.{16})\x52\x08.{8}(?:\x12\x1c\x4a\x10\1\x52\x08.{8})*+", re.S)
_LOG_RECORD_BYTES = 30
_ZERO_TRACE = bytes(16)
_NO_ID = bytes(8)
_STATUS_ERROR = 2


def has_marker(body: bytes, marker: bytes) -> int:
    """Where the last ``marker`` in ``body`` starts, or -1: ``bytes.rfind`` searches the mix of
    text and random ids of an OTLP body about twice as fast as ``find`` or ``in``."""
    return body.rfind(marker)


def _parse(cls: Any, body: bytes) -> Any:
    try:
        return cls.FromString(body)
    except DecodeError as exc:
        raise OTLPDecodeError(f"body is not valid OTLP protobuf: {exc}") from exc


def _record_at(blob: bytes, pos: int) -> tuple[int, int]:
    """Where the content of the record (field 2, length-delimited) at ``pos`` of a serialised
    scope view starts and where it ends."""
    length = shift = 0
    at = pos + 1
    while True:
        byte = blob[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return at, at + length


def run_links(run: bytes) -> list[tuple[bytes, bytes]]:
    """``(span id, parent span id)`` of each record of a run (parent empty for a root span)."""
    return [(run[at:at + 8], run[at + 10:at + 18]) if run[at + 8] == _PARENT_TAG else (run[at + 10:at + 18], b"")
            for at in range(0, len(run), SPAN_RECORD_BYTES)]


def link_record(span_id: bytes, parent: bytes) -> bytes:
    """A one-record run for a span that did not fail but is not an ordinary record (malformed ids
    become zeros, as "not associated")."""
    return (span_id if len(span_id) == 8 else _NO_ID) + b"\x22\x08" + (parent if len(parent) == 8 else _NO_ID)


@dataclass(slots=True)
class SpanWalk:
    """A trace export as the assembler takes it."""

    #: ``(raw trace id, run of records, spans in it)`` for the spans that did not fail, in order
    #: (a run holds ``SPAN_RECORD_BYTES`` per span: see ``run_links``).
    runs: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    #: ``(raw trace id, span, resource index)`` of each failed span, fully decoded (``Span``).
    failed: list[tuple[bytes, Any, int]] = field(default_factory=list)
    #: Resource attribute maps' encoded bytes, by resource index (only for failed spans).
    resources: dict[int, bytes] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0


def walk_spans(body: bytes) -> SpanWalk:
    """Walk a protobuf trace export (``ExportTraceServiceRequest``) into runs and failed spans.

    Raises ``OTLPDecodeError`` for a body that is not protobuf, or whose failed span is not.
    """
    view = _parse(_SPAN_VIEW, body)
    view.DiscardUnknownFields()
    walk = SpanWalk()
    runs = walk.runs
    raw: Any = None
    total = 0
    match = _SPAN_RUN.match
    # The view is let go before the walk: its arena holds a copy of every span's other fields.
    scopes = [(resource_index, scope_index, len(scope_spans.spans), scope_spans.SerializeToString())
              for resource_index, resource_spans in enumerate(view.resource_spans)
              for scope_index, scope_spans in enumerate(resource_spans.scope_spans)]
    del view
    tails = _SPAN_RECORD_TAIL.findall
    join = b"".join
    for resource_index, scope_index, spans_in_scope, blob in scopes:
        total += spans_in_scope
        pos, end = 0, len(blob)
        # Where a record sits in the scope is needed only for a failed span (to decode it from
        # the request): each run counts its records exactly, each other record is one.
        index = 0
        while pos < end:
            found = match(blob, pos)
            if found is not None:
                trace_id = found.group(1)
                records = tails(blob, pos, found.end())
                pos = found.end()
                count = len(records)
                index += count
                if trace_id == _ZERO_TRACE:
                    walk.rejected += count
                else:
                    runs.append((trace_id, join(records), count))
                continue
            start, pos = _record_at(blob, pos)
            index += 1
            span = _SPAN_RECORD_VIEW.FromString(blob[start:pos])
            trace_id = span.trace_id
            if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                walk.rejected += 1
                continue
            if span.status.code == _STATUS_ERROR or any(event.name == "exception" for event in span.events):
                if raw is None:
                    raw = _parse(_RAW_SPANS, body)
                resource_spans_raw = raw.resource_spans[resource_index]
                full = _full_span(resource_spans_raw.scope_spans[scope_index].spans, index - 1)
                if full is None or full.trace_id != trace_id or full.span_id != span.span_id:
                    # (cannot happen: the view and the raw view parsed the same body, record for record)
                    raise OTLPDecodeError("body is not valid OTLP protobuf: a span is missing")
                walk.failed.append((trace_id, full, resource_index))
                walk.resources.setdefault(resource_index, resource_spans_raw.resource)
                continue
            runs.append((trace_id, link_record(span.span_id, span.parent_span_id), 1))
    walk.accepted = total - walk.rejected
    return walk


def _full_span(spans: Any, index: int) -> Any:
    """The ``index``-th of a scope's encoded spans decoded in full (``Span``), None past the end."""
    if index >= len(spans):
        return None
    try:
        return Span.FromString(spans[index])
    except DecodeError as exc:
        raise OTLPDecodeError(f"body is not valid OTLP protobuf: {exc}") from exc


def resource_attributes(encoded: bytes) -> Any:
    """The attributes of an encoded ``Resource`` (a repeated ``KeyValue``)."""
    try:
        return Resource.FromString(encoded).attributes
    except DecodeError as exc:
        raise OTLPDecodeError(f"body is not valid OTLP protobuf: {exc}") from exc


@dataclass(slots=True)
class LogScopeView:
    """One scope of a logs export as the receivers split it."""

    resource_index: int
    scope_index: int
    scope: str
    #: In order: ``(raw trace id, first record index, records)`` for runs of records of one
    #: trace, ``(b"", index, 1)`` for a record that must be decoded (no trace, or an exception).
    items: list[tuple[bytes, int, int]] = field(default_factory=list)


def raw_logs(body: bytes) -> Any:
    """The light view of a logs export that holds each record's and each resource's bytes."""
    return _parse(_RAW_LOGS, body)


def log_scopes(body: bytes) -> tuple[list[LogScopeView], dict[tuple[int, int, int], Any], int, int, Any]:
    """Walk a protobuf logs export: ``(scopes, exception candidates, accepted, rejected, raw view)``.

    Exception candidates are the records whose bytes hold ``exception.``, decoded (``LogRecord``)
    by ``(resource index, scope index, record index)``; the raw view gives any record's bytes
    (``raw.resource_logs[r].scope_logs[s].log_records[i]``) and each resource's. Records whose
    trace or span id has the wrong length are left out and counted as rejected.
    """
    view = _parse(_LOG_IDS["Request"], body)
    view.DiscardUnknownFields()
    # The view is let go before the raw view is parsed: its arena holds a copy of every record's other fields.
    blobs = [(resource_index, scope_index, len(scope_logs.log_records), scope_logs.SerializeToString())
             for resource_index, resource_logs in enumerate(view.resource_logs)
             for scope_index, scope_logs in enumerate(resource_logs.scope_logs)]
    del view
    raw = raw_logs(body)
    candidates: dict[tuple[int, int, int], Any] = {}
    for resource_index, resource_logs in enumerate(raw.resource_logs):
        for scope_index, scope_logs in enumerate(resource_logs.scope_logs):
            records = list(scope_logs.log_records)
            # One search of the scope's records joined (a search per record costs four times
            # as much); an occurrence across two records only costs a decode.
            joined = b"".join(records)
            at = has_marker(joined, LOG_EXCEPTION_MARKER)
            if at < 0:
                continue
            ends = list(accumulate(map(len, records)))
            hits: dict[int, Any] = {}
            while at >= 0:
                index = bisect_right(ends, at)
                if index not in hits:
                    try:
                        hits[index] = LogRecord.FromString(records[index])
                    except DecodeError as exc:
                        raise OTLPDecodeError(f"body is not valid OTLP protobuf: {exc}") from exc
                at = joined.rfind(LOG_EXCEPTION_MARKER, 0, at)
            for index in sorted(hits):
                candidates[resource_index, scope_index, index] = hits[index]
    scopes: list[LogScopeView] = []
    total = rejected = 0
    match = _LOG_RUN.match
    for resource_index, scope_index, records_in_scope, blob in blobs:
        total += records_in_scope
        items: list[tuple[bytes, int, int]] = []
        scopes.append(LogScopeView(resource_index, scope_index,
                                   raw.resource_logs[resource_index].scope_logs[scope_index].scope.name, items))
        pos, end, index = 0, len(blob), 0
        while pos < end:
            found = match(blob, pos)
            if found is not None:
                in_run = (found.end() - pos) // _LOG_RECORD_BYTES
                items.append((found.group(1), index, in_run))
                index += in_run
                pos = found.end()
                continue
            start, pos = _record_at(blob, pos)
            record = _LOG_RECORD_VIEW.FromString(blob[start:pos])
            trace_id = record.trace_id
            if len(trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
                rejected += 1
            elif not trace_id or trace_id == _ZERO_TRACE:
                items.append((b"", index, 1))
            else:
                items.append((trace_id, index, 1))
            index += 1
    return scopes, candidates, total - rejected, rejected, raw
