"""OTLP/gRPC receiver: TraceService/Export and LogsService/Export."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_autoheal.errors import ConfigError, OTLPDecodeError, Overloaded, PayloadTooLarge
from otel_autoheal.receive.intake import Intake, IntakeResult

__all__ = ["GrpcReceiver"]

log = logging.getLogger("otel_autoheal.receive.grpc")

_TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#: Request bodies read from the network at once, before ``max_inflight_bytes`` can count them:
#: gRPC gives a handler no body size until the whole body is in memory, so a request beyond
#: these waits unread (grpc core buffers at most a flow-control window of it) and is refused
#: (UNAVAILABLE) unread after READ_WAIT_S (README, "Memory").
READING_REQUESTS = 2
#: How long a request waits for a read slot: reading a small body takes microseconds, so a burst
#: of concurrent small exports (a Collector sends up to 10 at once) waits instead of being refused.
READ_WAIT_S = 1.0


class GrpcReceiver:
    """Serves OTLP over gRPC; request bodies are decoded by us so that bad input gets INVALID_ARGUMENT."""

    def __init__(self, intake: Intake, host: str, port: int, workers: int = 8) -> None:
        self.intake = intake
        #: Shared by both services: a body being read is held whichever service it is for.
        self._reading = threading.BoundedSemaphore(READING_REQUESTS)
        limit = intake.max_request_bytes
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autoheal-grpc"),
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                # grpcio sets SO_REUSEPORT by default: a second otel-autoheal on the same port would
                # start silently and take half of the traffic into another state directory.
                ("grpc.so_reuseport", 0),
                # Without it grpc core widens every stream's receive window to the bandwidth-delay
                # product it measures (megabytes on a fast link), buffering that much of each waiting
                # or refused body outside any bound; a body being read still gets the window it needs.
                ("grpc.http2.bdp_probe", 0),
            ],
        )
        def raw_export(accept: Callable[[bytes, str, str], IntakeResult], respond: Callable[[IntakeResult], Any]) -> Any:
            # Request-streaming on our side (the wire is the same for a unary call): the handler
            # then runs before the body is read and can refuse it unread.
            return {"Export": grpc.stream_unary_rpc_method_handler(
                self._handler(accept, respond), request_deserializer=None,
                response_serializer=lambda m: m.SerializeToString(),
            )}

        handlers = raw_export(intake.traces, self._trace_response)
        log_handlers = raw_export(intake.logs, self._logs_response)
        # Registered (not generic) handlers: grpcio then finds the method in C, as for generated
        # servicers, instead of asking Python handlers on every call.
        self.server.add_registered_method_handlers("opentelemetry.proto.collector.trace.v1.TraceService", handlers)
        self.server.add_registered_method_handlers("opentelemetry.proto.collector.logs.v1.LogsService", log_handlers)
        self.port = self._bind(host, port)

    def _bind(self, host: str, port: int) -> int:
        address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        # grpcio reports a failed bind without its reason (and logs it to stderr itself): ask the
        # OS first, with the same SO_REUSEADDR grpcio uses, so the error says why.
        if port:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
            except OSError as exc:
                raise ConfigError("otlp_grpc", f"cannot listen on {address}: {exc.strerror or exc} "
                                               "(use --otlp-grpc / AUTOHEAL_OTLP_GRPC)") from None
        try:
            bound = self.server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise ConfigError("otlp_grpc", f"cannot listen on {address}: the address is in use or not available "
                                           "(use --otlp-grpc / AUTOHEAL_OTLP_GRPC)")
        return int(bound)

    @staticmethod
    def _trace_response(result: IntakeResult) -> Any:
        if result.rejected:
            return ExportTraceServiceResponse(
                partial_success=ExportTracePartialSuccess(rejected_spans=result.rejected, error_message=result.message)
            )
        return ExportTraceServiceResponse()

    @staticmethod
    def _logs_response(result: IntakeResult) -> Any:
        if result.rejected:
            return ExportLogsServiceResponse(
                partial_success=ExportLogsPartialSuccess(rejected_log_records=result.rejected, error_message=result.message)
            )
        return ExportLogsServiceResponse()

    def _handler(self, accept: Callable[[bytes, str, str], IntakeResult], respond: Callable[[IntakeResult], Any]) -> Any:
        intake = self.intake
        reading = self._reading

        def export(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata() or ())
            if not intake.authorized(metadata.get("authorization")):
                intake.reject("unauthenticated")
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (AUTOHEAL_INGEST_TOKEN)")
            if not reading.acquire(timeout=READ_WAIT_S):
                intake.reject("busy")
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{READING_REQUESTS} request bodies are being read; "
                                                           "retry later")
            try:
                body = next(requests, None)
                admitted = body is not None and intake.admit_bytes(len(body))
            except grpc.RpcError:  # the sender cancelled while its body was read
                context.abort(grpc.StatusCode.CANCELLED, "cancelled by the sender")
            finally:
                reading.release()
            if body is None:
                intake.reject("invalid")
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
                raise AssertionError("unreachable")  # pragma: no cover
            if not admitted:
                # Let the body go now rather than queue it; every OTLP exporter retries UNAVAILABLE
                # (RESOURCE_EXHAUSTED only with RetryInfo, per the OTLP spec: the Collector drops it).
                intake.reject("busy")
                context.abort(grpc.StatusCode.UNAVAILABLE, f"request bodies in flight reached "
                              f"{intake.max_inflight_bytes} bytes (max_inflight_bytes); retry later")
            try:
                # gRPC has no browser origin: the token alone decides.
                return respond(accept(body, "application/x-protobuf", intake.trust(metadata.get("authorization"))))
            except PayloadTooLarge as exc:
                intake.reject("too_large")
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            except OTLPDecodeError as exc:
                intake.reject("invalid")
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Overloaded as exc:
                intake.reject("overloaded")
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            finally:
                intake.release_bytes(len(body))
            raise AssertionError("unreachable")  # pragma: no cover

        return export

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 2.0) -> None:
        self.server.stop(grace).wait(grace + 1)
