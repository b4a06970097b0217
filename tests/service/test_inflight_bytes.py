"""Many concurrent maximum-size requests on both receivers: request bytes in flight are bounded
(max_inflight_bytes), refused ones are retried by the senders and every error is still filed."""

from __future__ import annotations

import os
import threading
import time

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_payloads import now_nanos, post
from polling import wait_for

MIB = 1024 * 1024
PROTOBUF = "application/x-protobuf"
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#: A little under the default max_request_bytes (8 MiB).
NEAR_MAX = int(7.5 * MIB)


def _peak_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("VmHWM not in /proc status")


def _error_log(trace_id: bytes, span_id: bytes, index: int, scope) -> None:
    record = scope.log_records.add(time_unix_nano=now_nanos(), severity_number=17, severity_text="ERROR",
                                   trace_id=trace_id, span_id=span_id)
    record.body.string_value = "failed"
    for key, value in (("exception.type", f"Burst{index}Error"), ("exception.message", "boom"),
                       ("exception.stacktrace", f'Traceback (most recent call last):\n  File "/app/b.py", line {index}, '
                                                f'in run\n    step()\nBurst{index}Error: boom\n')):
        record.attributes.add(key=key).value.string_value = value


def _tiny_logs(index: int) -> bytes:
    """A near-maximum logs export of tiny records (the shape that expands most when decoded) plus one error."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "burst"
    scope = resource_logs.scope_logs.add()
    trace_id, span_id = os.urandom(16), os.urandom(8)
    _error_log(trace_id, span_id, index, scope)
    record = scope.log_records.add(time_unix_nano=now_nanos(), severity_number=9, trace_id=trace_id, span_id=span_id)
    record.body.string_value = "x"
    one = len(record.SerializeToString()) + 3
    for _ in range(NEAR_MAX // one):
        scope.log_records.add().CopyFrom(record)
    return request.SerializeToString()


def _ok_spans(index: int) -> bytes:
    """A near-maximum trace export of spans that did not fail plus one failed span."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "burst"
    scope = resource_spans.scope_spans.add()
    now = now_nanos()
    trace_id = os.urandom(16)
    failed = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="job", kind=2, start_time_unix_nano=now,
                             end_time_unix_nano=now + 1000)
    failed.status.code = 2
    event = failed.events.add(name="exception", time_unix_nano=now + 500)
    for key, value in (("exception.type", f"Span{index}Error"), ("exception.message", "boom")):
        event.attributes.add(key=key).value.string_value = value
    one = len(scope.spans.add(trace_id=trace_id, span_id=b"\1" * 8, name="ok", start_time_unix_nano=now,
                              end_time_unix_nano=now + 10).SerializeToString()) + 3
    for n in range(NEAR_MAX // one - 1):
        scope.spans.add(trace_id=trace_id, span_id=n.to_bytes(8, "big"), name="ok", start_time_unix_nano=now,
                        end_time_unix_nano=now + 10)
    return request.SerializeToString()


def _send_grpc(channel: grpc.Channel, method: str, body: bytes, outcomes: list[str]) -> None:
    """Export until acknowledged, retrying UNAVAILABLE as every OTLP exporter does."""
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            call(body, timeout=60)
            outcomes.append("ok")
            return
        except grpc.RpcError as exc:
            outcomes.append(exc.code().name)
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                return
            time.sleep(0.2)
    outcomes.append("gave up")


def _send_http(url: str, body: bytes, outcomes: list[str]) -> None:
    """POST until acknowledged, retrying 503 (the Collector's behaviour)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, _reply = post(url, body, PROTOBUF)
        outcomes.append(str(status))
        if status != 503:
            return
        time.sleep(0.2)
    outcomes.append("gave up")


def test_concurrent_max_size_requests_stay_under_280_mb_and_every_error_is_filed(autoheal_factory):
    """12 gRPC and 4 HTTP senders each send a near-maximum request at once: peak RSS stays
    <= 280 MB, refusals are retryable (UNAVAILABLE / 503), every error is filed after the
    retries, and a small request is served meanwhile."""
    autoheal = autoheal_factory(trace_wait=0.5)
    bodies = [(_tiny_logs(i), LOGS_METHOD, "/v1/logs") if i % 2 else (_ok_spans(i), TRACE_METHOD, "/v1/traces")
              for i in range(16)]
    outcomes: list[str] = []
    channels = [grpc.insecure_channel(autoheal.grpc_endpoint, options=[("grpc.max_send_message_length", 16 * MIB)])
                for _ in range(12)]
    threads = [threading.Thread(target=_send_grpc, args=(channels[i], method, body, outcomes))
               for i, (body, method, _path) in enumerate(bodies[:12])]
    threads += [threading.Thread(target=_send_http, args=(f"{autoheal.http_endpoint}{path}", body, outcomes))
                for body, _method, path in bodies[12:]]
    try:
        for thread in threads:
            thread.start()
        # A small export meanwhile is acknowledged (possibly after a retryable refusal).
        small: list[str] = []
        _send_http(f"{autoheal.http_endpoint}/v1/traces", _small_trace(), small)
        assert small[-1] == "200", small
        for thread in threads:
            thread.join(400)
    finally:
        for channel in channels:
            channel.close()
    finals = [o for o in outcomes if o not in ("UNAVAILABLE", "503")]
    assert sorted(finals) == sorted(["ok"] * 12 + ["200"] * 4), outcomes
    issues = autoheal.wait_for_issues(17, timeout=240)
    assert len(issues) == 17 and all(i["count"] == 1 for i in issues), [(i["exception_type"], i["count"]) for i in issues]
    peak = _peak_mb(autoheal.proc.pid)
    # Measured 227-255 MB under load average ~10; 302 MB and more with max_inflight_bytes at 1 GB.
    assert peak <= 280, f"peak RSS {peak:.0f} MB (refusals: {len(outcomes) - len(finals)})"


def test_grpc_refuses_unread_while_two_bodies_are_being_read(autoheal_factory):
    """While two gRPC request bodies are still arriving, a third request waits and is then refused
    UNAVAILABLE before its body is read, and the two slow ones are still acknowledged once their bodies are in."""
    autoheal = autoheal_factory()
    channel = grpc.insecure_channel(autoheal.grpc_endpoint)
    arrived = threading.Event()

    def slow_body():  # the body arrives only when the test says so: the server waits reading it
        arrived.wait(120)
        yield _small_trace()

    try:
        slow_call = channel.stream_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)
        slow = [slow_call.future(slow_body(), timeout=150) for _ in range(2)]
        third = channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)

        def refused() -> grpc.RpcError | None:
            try:
                third(ExportTraceServiceRequest().SerializeToString(), timeout=30)
            except grpc.RpcError as exc:
                return exc
            return None  # both slow calls not in their handlers yet: an empty export is harmless

        error = wait_for(refused, timeout=60)
        assert error.code() == grpc.StatusCode.UNAVAILABLE and "being read" in error.details(), error
        assert autoheal.metric('autoheal_requests_rejected_total{reason="busy"}') >= 1
        arrived.set()
        for call in slow:
            call.result(timeout=60)
        third(ExportTraceServiceRequest().SerializeToString(), timeout=30)
        # Both slow exports carry the same SmallError: one issue seen twice.
        autoheal.wait_for_issues(lambda issues: sum(i["count"] for i in issues) >= 2)
    finally:
        arrived.set()
        channel.close()


def _small_trace() -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    now = now_nanos()
    span = scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="small", start_time_unix_nano=now,
                           end_time_unix_nano=now + 1000)
    span.status.code = 2
    event = span.events.add(name="exception", time_unix_nano=now + 500)
    event.attributes.add(key="exception.type").value.string_value = "SmallError"
    return request.SerializeToString()
