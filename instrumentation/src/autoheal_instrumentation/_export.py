"""Send serialized OTLP requests over http/protobuf (stdlib) or gRPC (optional grpcio)."""

from __future__ import annotations

import gzip
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ._config import PROTOCOL_GRPC, Settings
from ._version import version

__all__ = ["send"]

_log = logging.getLogger("autoheal_instrumentation")


def _post(url: str, body: bytes, settings: Settings, timeout: float) -> None:
    headers = {"Content-Type": "application/x-protobuf", "User-Agent": f"otel-autoheal-instrumentation/{version()}"}
    headers.update(settings.headers)
    if settings.compression == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL from config
        response.read()


def _grpc_target(endpoint: str) -> tuple[str, bool]:
    parts = urlsplit(endpoint if "://" in endpoint else "http://" + endpoint)
    insecure = parts.scheme in ("http", "unix") or parts.scheme == ""
    return parts.netloc or parts.path, insecure


def _send_grpc(traces: bytes, logs: bytes, settings: Settings, deadline: float) -> None:
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    target, insecure = _grpc_target(settings.grpc_endpoint)
    channel = grpc.insecure_channel(target) if insecure else grpc.secure_channel(target, grpc.ssl_channel_credentials())
    metadata = [(k.lower(), v) for k, v in settings.headers.items()]
    compression = grpc.Compression.Gzip if settings.compression == "gzip" else None
    try:
        if traces:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(traces)
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(  # type: ignore[no-untyped-call]
                request, timeout=max(0.05, deadline - time.monotonic()), metadata=metadata, compression=compression
            )
        if logs:
            log_request = logs_service_pb2.ExportLogsServiceRequest.FromString(logs)
            logs_service_pb2_grpc.LogsServiceStub(channel).Export(  # type: ignore[no-untyped-call]
                log_request, timeout=max(0.05, deadline - time.monotonic()), metadata=metadata, compression=compression
            )
    finally:
        channel.close()


def send(traces: bytes, logs: bytes, settings: Settings, deadline: float) -> bool:
    """Send one payload; True when every part was accepted. Never raises."""
    try:
        if settings.protocol == PROTOCOL_GRPC:
            _send_grpc(traces, logs, settings, deadline)
            return True
        if traces:
            _post(settings.traces_endpoint, traces, settings, max(0.05, deadline - time.monotonic()))
        if logs:
            _post(settings.logs_endpoint, logs, settings, max(0.05, deadline - time.monotonic()))
        return True
    except Exception as exc:  # the host must never see our failures
        _log.debug("otel-autoheal: export failed: %r", exc)
        return False
