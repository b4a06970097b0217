"""A small OTLP/gRPC receiver that records what the collector sends, standing in for otel-autoheal."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["OtlpSink", "SinkLog", "SinkSpan", "attrs"]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attrs(value.kvlist_value.values)
    return getattr(value, kind)


def attrs(kvs: Any) -> dict[str, Any]:
    """Turn repeated KeyValue into a plain dict."""
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclasses.dataclass(frozen=True)
class SinkSpan:
    span: Span
    resource: dict[str, Any]
    metadata: dict[str, str]

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def attributes(self) -> dict[str, Any]:
        return attrs(self.span.attributes)


@dataclasses.dataclass(frozen=True)
class SinkLog:
    record: LogRecord
    resource: dict[str, Any]
    metadata: dict[str, str]

    @property
    def trace_id(self) -> str:
        return self.record.trace_id.hex()

    @property
    def attributes(self) -> dict[str, Any]:
        return attrs(self.record.attributes)


class OtlpSink:
    """OTLP/gRPC trace and log receiver on 127.0.0.1 that keeps everything in memory.

    ``port`` 0 takes a free port; a given port lets a test start the receiver where a collector
    has been failing to deliver (an instance coming back).
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._spans: list[SinkSpan] = []
        self._logs: list[SinkLog] = []
        # While refusing, exports are answered UNAVAILABLE (as an overloaded or restarting
        # otel-autoheal answers) and what was offered is kept apart from what was accepted.
        self._refusing = False
        self._offered_spans: list[SinkSpan] = []
        self._offered_logs: list[SinkLog] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        sink = self

        class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(  # noqa: N802 - generated gRPC name
                self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
            ) -> trace_service_pb2.ExportTraceServiceResponse:
                meta = dict(context.invocation_metadata())
                got = [
                    SinkSpan(span, attrs(rs.resource.attributes), meta)
                    for rs in request.resource_spans
                    for ss in rs.scope_spans
                    for span in ss.spans
                ]
                with sink._lock:
                    refusing = sink._refusing
                    (sink._offered_spans if refusing else sink._spans).extend(got)
                if refusing:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "refusing on purpose (test)")
                return trace_service_pb2.ExportTraceServiceResponse()

        class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(  # noqa: N802 - generated gRPC name
                self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
            ) -> logs_service_pb2.ExportLogsServiceResponse:
                meta = dict(context.invocation_metadata())
                got = [
                    SinkLog(record, attrs(rl.resource.attributes), meta)
                    for rl in request.resource_logs
                    for sl in rl.scope_logs
                    for record in sl.log_records
                ]
                with sink._lock:
                    refusing = sink._refusing
                    (sink._offered_logs if refusing else sink._logs).extend(got)
                if refusing:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "refusing on purpose (test)")
                return logs_service_pb2.ExportLogsServiceResponse()

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(), self._server)
        port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"127.0.0.1:{port}"
        self._server.start()

    def refuse(self, refusing: bool) -> None:
        """Answer every export UNAVAILABLE (True) or accept again (False)."""
        with self._lock:
            self._refusing = refusing

    def offered(self) -> tuple[list[SinkSpan], list[SinkLog]]:
        """Spans and log records that were offered while refusing (retries repeat them)."""
        with self._lock:
            return list(self._offered_spans), list(self._offered_logs)

    def spans(self, trace_id: str | None = None) -> list[SinkSpan]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def logs(self, trace_id: str | None = None) -> list[SinkLog]:
        with self._lock:
            return [r for r in self._logs if trace_id is None or r.trace_id == trace_id]

    def trace_ids(self) -> set[str]:
        with self._lock:
            return {s.trace_id for s in self._spans}

    def __iter__(self) -> Iterator[SinkSpan]:
        return iter(self.spans())

    def stop(self) -> None:
        self._server.stop(grace=1).wait()
