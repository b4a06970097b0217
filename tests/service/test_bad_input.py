"""Bad input gets a clean 4xx or gRPC status, the service keeps serving, and valid data is not lost."""

from __future__ import annotations

import gzip
import json

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _valid(name: str = "ok-span") -> dict:
    return traces_payload([span(new_trace_id(), new_span_id(), name,
                                exception={"type": "ValueError", "message": name, "stacktrace": ""})])


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "expected"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", {}, 400),  # truncated protobuf
        (b"{not json", "application/json", {}, 400),
        (b"[1, 2]", "application/json", {}, 400),
        (b"\xff\xfe\xfa", "application/json", {}, 400),  # invalid UTF-8
        (b"hello", "text/plain", {}, 415),
        (b"\x1f\x8b\x08garbage", "application/json", {"Content-Encoding": "gzip"}, 400),
        (b"{}", "application/json", {"Content-Encoding": "br"}, 400),
        (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc", "spanId": "00"}]}]}]}).encode(),
         "application/json", {}, 400),  # wrong-length hex id
        (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz" * 16}]}]}]}).encode(),
         "application/json", {}, 400),  # not hex
    ],
)
def test_http_bad_bodies_get_4xx(autoheal, body, content_type, headers, expected):
    """Each malformed request gets its 4xx with a message; the next valid request still works."""
    status, answer = post(f"{autoheal.http_endpoint}/v1/traces", body, content_type, headers)
    assert status == expected, answer
    assert answer  # a message explains the refusal
    assert post(f"{autoheal.http_endpoint}/v1/traces", _valid())[0] == 200
    autoheal.wait_for_issues(1)


def test_size_limits_and_gzip_bomb(autoheal_factory):
    """Bodies over the limit (raw or decompressed) get 413; a gzip bomb is refused without inflating it."""
    svc = autoheal_factory(env={"AUTOHEAL_MAX_REQUEST_BYTES": "100000"})
    status, _ = post(f"{svc.http_endpoint}/v1/traces", b"{" + b" " * 200_000 + b"}")
    assert status == 413
    bomb = gzip.compress(b"{" + b" " * 50_000_000 + b"}")
    assert len(bomb) < 100_000
    status, answer = post(f"{svc.http_endpoint}/v1/traces", bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413, answer
    assert post(f"{svc.http_endpoint}/v1/traces", _valid())[0] == 200
    svc.wait_for_issues(1)
    assert svc.metric("autoheal_requests_rejected_total") >= 2


def test_wrong_length_ids_in_protobuf_are_rejected_not_fatal(autoheal):
    """Spans with empty or wrong-length trace ids are rejected (partial success); valid spans alongside are kept."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    bad = scope.spans.add(name="bad", trace_id=b"\x01\x02", span_id=b"\x01" * 8)
    del bad
    scope.spans.add(name="empty", span_id=b"\x01" * 8)
    good = scope.spans.add(name="good", trace_id=bytes.fromhex(new_trace_id()), span_id=bytes.fromhex(new_span_id()))
    event = good.events.add(name="exception")
    kv = event.attributes.add(key="exception.type")
    kv.value.string_value = "KeyError"
    good.status.code = 2
    status, answer = post(f"{autoheal.http_endpoint}/v1/traces", request.SerializeToString(), "application/x-protobuf")
    assert status == 200
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer)
    assert response.partial_success.rejected_spans == 2
    assert autoheal.wait_for_issues(1)[0]["exception_type"] == "KeyError"


def test_grpc_bad_input_and_size(autoheal_factory):
    """gRPC: garbage → INVALID_ARGUMENT, too big → RESOURCE_EXHAUSTED, then a valid export succeeds."""
    svc = autoheal_factory(env={"AUTOHEAL_MAX_REQUEST_BYTES": "100000"})
    with grpc.insecure_channel(svc.grpc_endpoint) as channel:
        raw = channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\x0a" + b"\x80" * 10 + b"x" * 200_000, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        request = ExportTraceServiceRequest()
        good = request.resource_spans.add().scope_spans.add().spans.add(
            name="good", trace_id=bytes.fromhex(new_trace_id()), span_id=bytes.fromhex(new_span_id()))
        good.status.code = 2
        raw(request.SerializeToString(), timeout=10)
    svc.wait_for_issues(1)


def test_ingest_token_is_required_when_set(autoheal_factory):
    """With AUTOHEAL_INGEST_TOKEN, HTTP answers 401 and gRPC UNAUTHENTICATED without the bearer token."""
    svc = autoheal_factory(env={"AUTOHEAL_INGEST_TOKEN": "s3cret-ingest"})
    assert post(f"{svc.http_endpoint}/v1/traces", _valid())[0] == 401
    assert post(f"{svc.http_endpoint}/v1/traces", _valid(), headers={"Authorization": "Bearer nope"})[0] == 401
    with grpc.insecure_channel(svc.grpc_endpoint) as channel:
        raw = channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            raw(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        raw(b"", timeout=10, metadata=[("authorization", "Bearer s3cret-ingest")])
    assert post(f"{svc.http_endpoint}/v1/traces", _valid(), headers={"Authorization": "Bearer s3cret-ingest"})[0] == 200
    svc.wait_for_issues(1)
    assert "s3cret-ingest" not in svc.log_text()


def test_cors_preflight_for_configured_origin(autoheal_factory):
    """A configured browser origin gets CORS headers on preflight and POST; others are refused."""
    import urllib.request

    svc = autoheal_factory("--cors-origin", "http://127.0.0.1:5173")
    request = urllib.request.Request(f"{svc.http_endpoint}/v1/traces", method="OPTIONS", headers={
        "Origin": "http://127.0.0.1:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5173"
    status, _ = post(f"{svc.http_endpoint}/v1/traces", _valid(), headers={"Origin": "http://evil.test"})
    assert status == 200  # data is accepted, but the browser would not see the answer
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(f"{svc.http_endpoint}/v1/traces", method="OPTIONS",
                                                      headers={"Origin": "http://evil.test"}), timeout=10)


def test_bounded_traces_evict_with_a_hint(autoheal_factory):
    """Beyond max_traces the oldest traces are processed early, counted, and the log names the setting."""
    svc = autoheal_factory(env={"AUTOHEAL_MAX_TRACES": "5"}, trace_wait=30)
    spans = [span(new_trace_id(), new_span_id(), f"s{i}", exception={"type": "E", "message": f"m{i}", "stacktrace": ""})
             for i in range(12)]
    assert post(f"{svc.http_endpoint}/v1/traces", traces_payload(spans))[0] == 200
    svc.wait_for_issues(lambda issues: sum(i["count"] for i in issues) >= 7)
    assert svc.metric("autoheal_traces_evicted_total") == 7
    assert "max_traces" in svc.log_text()


def test_records_per_trace_are_bounded_but_errors_kept(autoheal_factory):
    """A trace beyond max_records_per_trace drops ordinary spans (counted, with a hint) and keeps its error."""
    svc = autoheal_factory(env={"AUTOHEAL_MAX_RECORDS_PER_TRACE": "10"})
    trace_id, root = new_trace_id(), new_span_id()
    spans = [span(trace_id, new_span_id(), f"ok{i}", parent=root) for i in range(50)]
    spans.append(span(trace_id, new_span_id(), "boom", parent=root,
                      exception={"type": "ValueError", "message": "kept", "stacktrace": ""}))
    request = ExportTraceServiceRequest()
    from google.protobuf import json_format

    from otel_autoheal.otlp import _hex_ids_to_base64

    json_format.ParseDict(_hex_ids_to_base64(traces_payload(spans)), request)
    assert post(f"{svc.http_endpoint}/v1/traces", request.SerializeToString(), "application/x-protobuf")[0] == 200
    issue = svc.wait_for_issues(1)[0]
    assert issue["exception_type"] == "ValueError"
    assert svc.metric("autoheal_records_dropped_total") == 41
    assert "max_records_per_trace" in svc.log_text()
