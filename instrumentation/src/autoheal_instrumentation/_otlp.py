"""Build OTLP export requests from plain data, only when something must be sent.

Building the protobuf messages directly (opentelemetry-proto, already a dependency of the OTLP
exporters) lets the CLI reuse the exact span ids and timestamps it generated cheaply at start,
without importing the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

__all__ = ["EventData", "LogData", "SpanData", "build_logs", "build_traces"]

SPAN_KIND_INTERNAL = 1
STATUS_ERROR = 2


class EventData(TypedDict):
    name: str
    time: int
    attributes: Mapping[str, Any]


class SpanData(TypedDict):
    trace_id: bytes
    span_id: bytes
    name: str
    start: int
    end: int
    attributes: Mapping[str, Any]
    events: Sequence[EventData]
    status_code: int
    status_message: str


class LogData(TypedDict):
    time: int
    severity_number: int
    severity_text: str
    body: str
    attributes: Mapping[str, Any]
    trace_id: bytes
    span_id: bytes
    event_name: str


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(_any(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def _attrs(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any(v)) for k, v in attributes.items() if v is not None]


def _resource(attributes: Mapping[str, Any]) -> Resource:
    return Resource(attributes=_attrs(attributes))


def build_traces(
    resource: Mapping[str, Any], scope: tuple[str, str], spans: Sequence[SpanData]
) -> ExportTraceServiceRequest:
    """One ResourceSpans with one scope holding ``spans``."""
    pb_spans = []
    for s in spans:
        span = Span(
            trace_id=s["trace_id"],
            span_id=s["span_id"],
            name=s["name"],
            kind=SPAN_KIND_INTERNAL,  # type: ignore[arg-type]
            start_time_unix_nano=s["start"],
            end_time_unix_nano=s["end"],
            attributes=_attrs(s["attributes"]),
            flags=0x100 | 0x01,  # sampled; "has is_remote" bit set, not remote
            status=Status(code=s["status_code"], message=s["status_message"]),  # type: ignore[arg-type]
        )
        for e in s["events"]:
            span.events.add(time_unix_nano=e["time"], name=e["name"], attributes=_attrs(e["attributes"]))
        pb_spans.append(span)
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(resource),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope[0], version=scope[1]), spans=pb_spans)],
            )
        ]
    )


def build_logs(
    resource: Mapping[str, Any], scope: tuple[str, str], logs: Sequence[LogData]
) -> ExportLogsServiceRequest:
    """One ResourceLogs with one scope holding ``logs``."""
    records = [
        LogRecord(
            time_unix_nano=r["time"],
            observed_time_unix_nano=r["time"],
            severity_number=r["severity_number"],  # type: ignore[arg-type]
            severity_text=r["severity_text"],
            body=AnyValue(string_value=r["body"]),
            attributes=_attrs(r["attributes"]),
            trace_id=r["trace_id"],
            span_id=r["span_id"],
            flags=0x01,
            event_name=r["event_name"],
        )
        for r in logs
    ]
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=_resource(resource),
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name=scope[0], version=scope[1]), log_records=records)
                ],
            )
        ]
    )
