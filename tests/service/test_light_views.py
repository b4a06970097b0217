"""The receivers' light walk of OTLP exports (issue 16) finds every failed span and exception log
wherever it hides among ordinary ones, in every shape, and counts what it rejects."""

from __future__ import annotations

import os

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otlp_payloads import log_record, logs_payload, now_nanos, post, span, traces_payload
from polling import wait_for

PROTOBUF = "application/x-protobuf"
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#: An unknown field (number 99, length-delimited) appended to a span or record: kept, never in the way.
UNKNOWN_FIELD = b"\x9a\x06\x05extra"


def _quiet_spans(scope, traces: int, unknown: bool = False) -> None:  # type: ignore[no-untyped-def]
    """``traces`` ordinary traces of three spans each (a root, a child, a grandchild)."""
    now = now_nanos()
    for _ in range(traces):
        trace_id, ids = os.urandom(16), [os.urandom(8) for _ in range(3)]
        for index, span_id in enumerate(ids):
            added = scope.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=ids[index - 1] if index else b"",
                                    name=f"quiet {index}", kind=1, start_time_unix_nano=now, end_time_unix_nano=now + 10)
            added.attributes.add(key="http.route").value.string_value = "/items"
            if unknown:
                added.MergeFromString(UNKNOWN_FIELD)


def _failing(scope, shape: str, trace_id: bytes, parent: bytes = b"") -> bytes:  # type: ignore[no-untyped-def]
    """A span of ``shape`` whose failure is told only by its status or its events."""
    now = now_nanos()
    span_id = os.urandom(8)
    added = scope.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=f"op {shape}", kind=2,
                            start_time_unix_nano=now, end_time_unix_nano=now + 10)
    if shape in ("status", "both"):
        added.status.code = 2
        added.status.message = f"status {shape} failed"
    if shape in ("event", "both", "among-events"):
        if shape == "among-events":
            added.events.add(name="retry", time_unix_nano=now)
        event = added.events.add(name="exception", time_unix_nano=now + 1)
        for key, value in (("exception.type", f"Shape{shape.title().replace('-', '')}Error"),
                           ("exception.message", f"{shape} failed")):
            event.attributes.add(key=key).value.string_value = value
    if shape == "unknown":
        added.status.code = 2
        added.status.message = "unknown fields around"
        added.MergeFromString(UNKNOWN_FIELD)
    return span_id


def _not_failing(scope, trace_id: bytes) -> None:  # type: ignore[no-untyped-def]
    """Spans with events and a status that are no failure: an OK status, an event not named exception."""
    now = now_nanos()
    ok = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="fine ok", start_time_unix_nano=now,
                         end_time_unix_nano=now + 10)
    ok.status.code = 1
    ok.status.message = "all good"
    evented = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="fine events", start_time_unix_nano=now,
                              end_time_unix_nano=now + 10)
    evented.events.add(name="cache miss", time_unix_nano=now).attributes.add(key="exception.type").value.string_value = "x"


SHAPES = ("status", "event", "both", "among-events", "unknown")


def _grpc(autoheal, method: str, body: bytes) -> bytes:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(autoheal.grpc_endpoint) as channel:
        return channel.unary_unary(method, request_serializer=None, response_deserializer=None)(body, timeout=30)  # type: ignore[no-any-return]


def test_failed_spans_are_found_in_every_position_and_shape(autoheal_factory):
    """A failed span (ERROR status, an exception event, both, among other events, next to unknown
    fields) first, in the middle or last among ordinary spans is filed; spans with an OK status or
    other events are not, and the failing trace keeps its ordinary spans as parents."""
    autoheal = autoheal_factory(trace_wait=1)
    expected: set[str] = set()
    for position in ("first", "middle", "last"):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"svc-{position}"
        scope = resource_spans.scope_spans.add()
        for shape in SHAPES:
            if position != "first":
                _quiet_spans(scope, 3, unknown=shape == "unknown")
            trace_id, root = os.urandom(16), os.urandom(8)
            scope.spans.add(trace_id=trace_id, span_id=root, name=f"root of {shape}", kind=2)
            _failing(scope, shape, trace_id, parent=root)
            _not_failing(scope, os.urandom(16))
            if position != "last":
                _quiet_spans(scope, 3)
            expected.add(f"{position}/{shape}")
        status, _ = post(f"{autoheal.http_endpoint}/v1/traces", request.SerializeToString(), PROTOBUF)
        assert status == 200
    # Same spans by gRPC, one failing shape per export.
    for shape in SHAPES:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = "svc-grpc"
        scope = resource_spans.scope_spans.add()
        _quiet_spans(scope, 5)
        _failing(scope, shape, os.urandom(16))
        _quiet_spans(scope, 5)
        reply = ExportTraceServiceResponse.FromString(_grpc(autoheal, TRACE_METHOD, request.SerializeToString()))
        assert reply.partial_success.rejected_spans == 0
        expected.add(f"grpc/{shape}")
    wait_for(lambda: autoheal.metric("autoheal_occurrences_total") >= len(expected), 60, 0.5, "every failure filed")
    issues = autoheal.wait_for_issues(1)
    assert autoheal.metric("autoheal_occurrences_total") == len(expected)
    text = " ".join(issue["body"] for issue in issues)
    assert "fine ok" not in " ".join(issue["title"] for issue in issues)
    assert "fine events" not in " ".join(issue["title"] for issue in issues)
    for shape in SHAPES:
        assert f"op {shape}" in text, shape
    # 3 × 5 traces over HTTP: 3 ordinary traces of 3 spans before and after where asked, a root,
    # the failed span and two spans that did not fail; 5 gRPC exports of 10 ordinary traces + 1.
    quiet = sum((3 * 3 if position != "first" else 0) + (3 * 3 if position != "last" else 0)
                for position in ("first", "middle", "last")) * len(SHAPES)
    assert autoheal.metric("autoheal_spans_received_total") == quiet + 3 * len(SHAPES) * 4 + len(SHAPES) * 31


def test_malformed_ids_are_rejected_and_counted_among_good_spans(autoheal):
    """Spans with a trace id of the wrong length or all zeros are rejected and counted (partial
    success), wherever they are; malformed span or parent ids are kept as "no id", and a failed
    span after them (and after a trace id crafted to recur inside its records) is still filed."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    _quiet_spans(scope, 2)
    scope.spans.add(trace_id=b"\x01" * 15, span_id=os.urandom(8), name="short trace id")
    scope.spans.add(trace_id=bytes(16), span_id=os.urandom(8), name="zero trace id")
    scope.spans.add(trace_id=bytes(16), span_id=os.urandom(8), parent_span_id=os.urandom(8), name="zero trace id 2")
    # A trace id crafted to recur inside its own records (its span id and parent after it).
    span_id, parent = os.urandom(8), os.urandom(8)
    crafted = b"\x12\x08" + span_id + b"\x22\x08" + parent[:4]
    for _ in range(3):
        scope.spans.add(trace_id=crafted, span_id=span_id, parent_span_id=parent, name="crafted")
    trace_id = os.urandom(16)
    scope.spans.add(trace_id=trace_id, span_id=b"\x02" * 5, parent_span_id=b"\x03" * 3, name="odd span ids")
    _failing(scope, "event", trace_id, parent=b"\x04" * 8)
    scope.spans.add(trace_id=b"", span_id=os.urandom(8), name="no trace id")
    _quiet_spans(scope, 2)
    reply = ExportTraceServiceResponse.FromString(_grpc(autoheal, TRACE_METHOD, request.SerializeToString()))
    assert reply.partial_success.rejected_spans == 4
    assert "16-byte trace id" in reply.partial_success.error_message
    issue = autoheal.wait_for_issues(1)[0]
    assert "op event" in issue["body"]
    assert issue["exception_type"] == "ShapeEventError"
    assert autoheal.metric("autoheal_spans_received_total") == 2 * 3 * 2 + 3 + 2


def test_json_traces_take_the_same_walk(autoheal):
    """OTLP/JSON exports (converted to protobuf before the walk) file a failed span hidden among ordinary ones."""
    trace_id = os.urandom(16).hex()
    spans = [span(os.urandom(16).hex(), os.urandom(8).hex(), f"quiet {n}") for n in range(20)]
    spans.insert(7, span(trace_id, os.urandom(8).hex(), "json op", exception={"type": "JsonShapeError", "message": "m"}))
    status, _ = post(f"{autoheal.http_endpoint}/v1/traces", traces_payload(spans))
    assert status == 200
    issue = autoheal.wait_for_issues(1)[0]
    assert issue["exception_type"] == "JsonShapeError"


def _log(scope, trace_id: bytes, span_id: bytes, body: str, exception: str = "", extra: bool = False):  # type: ignore[no-untyped-def]
    record = scope.log_records.add(time_unix_nano=now_nanos(), severity_number=9, severity_text="INFO",
                                   trace_id=trace_id, span_id=span_id)
    record.body.string_value = body
    record.attributes.add(key="code.function").value.string_value = "handle"
    if exception:
        record.severity_number, record.severity_text = 17, "ERROR"
        for key, value in (("exception.type", exception), ("exception.message", body)):
            record.attributes.add(key=key).value.string_value = value
    if extra:
        record.MergeFromString(UNKNOWN_FIELD)
    return record


def test_exception_logs_are_found_in_every_position_and_shape(autoheal_factory):
    """An exception log first, in the middle or last among other traces' records (with and
    without span ids, trace-less, with unknown fields) is filed with the records of its trace
    that came before it; a body that merely mentions ``exception.`` is no exception, and
    records with malformed ids are rejected and counted."""
    autoheal = autoheal_factory(trace_wait=1)
    for position in ("first", "middle", "last"):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.add(key="service.name").value.string_value = f"logs-{position}"
        scope = resource_logs.scope_logs.add()
        scope.scope.name = "checkout.handlers"
        trace_id, span_id = os.urandom(16), os.urandom(8)

        def others(scope=scope) -> None:  # type: ignore[no-untyped-def]
            for n in range(6):
                _log(scope, os.urandom(16), os.urandom(8) if n % 2 else b"", f"other line {n}", extra=n == 3)
            _log(scope, b"", b"", "a line outside any trace")
            _log(scope, os.urandom(16), os.urandom(8), "see exception.type docs")  # marker, no key

        if position != "first":
            others()
        _log(scope, trace_id, span_id, f"before the {position} failure")
        _log(scope, trace_id, b"", f"no span id before the {position} failure")
        _log(scope, trace_id, span_id, f"{position} failed", exception=f"Log{position.title()}Error")
        _log(scope, b"\x01" * 9, span_id, "malformed trace id")
        _log(scope, os.urandom(16), b"\x01" * 3, "malformed span id")
        if position != "last":
            others()
        reply = ExportLogsServiceResponse.FromString(_grpc(autoheal, LOGS_METHOD, request.SerializeToString()))
        assert reply.partial_success.rejected_log_records == 2
    issues = autoheal.wait_for_issues(3)
    assert len(issues) == 3
    for position in ("first", "middle", "last"):
        (issue,) = [i for i in issues if i["exception_type"] == f"Log{position.title()}Error"]
        logs = issue["body"].split("## Logs before the error", 1)[1]
        assert f"before the {position} failure" in logs
        assert f"no span id before the {position} failure" in logs
        assert "other line" not in logs
    assert autoheal.metric("autoheal_logs_received_total") == 3 * 3 + 2 * 8 * 2 - 0


def test_json_logs_held_undecoded_join_their_trace(autoheal_factory):
    """OTLP/JSON log records of a trace without an error yet (held as runs, converted to protobuf)
    are in its issue when its exception log arrives in a later export."""
    autoheal = autoheal_factory(trace_wait=1)
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    records = [log_record(f"json other {n}", trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex()) for n in range(5)]
    records.insert(2, log_record("json line before", trace_id=trace_id, span_id=span_id))
    assert post(f"{autoheal.http_endpoint}/v1/logs", logs_payload(records))[0] == 200
    error = log_record("json failed", trace_id=trace_id, span_id=span_id, severity="ERROR", severity_number=17,
                       attributes={"exception.type": "JsonLogError", "exception.message": "json failed"})
    assert post(f"{autoheal.http_endpoint}/v1/logs", logs_payload([error]))[0] == 200
    issue = autoheal.wait_for_issues(1)[0]
    assert issue["exception_type"] == "JsonLogError"
    assert "json line before" in issue["body"]
    assert "json other" not in issue["body"]


def test_quiet_trace_runs_are_cut_to_the_record_bound(autoheal_factory):
    """A trace without an error yet that outgrows max_records_per_trace over several exports
    loses its newest spans (cut inside a run), then its newest logs, counted exactly; when it
    fails it is filed with what was kept."""
    autoheal = autoheal_factory(env={"AUTOHEAL_MAX_RECORDS_PER_TRACE": "50"}, trace_wait=1)
    trace_id, root = os.urandom(16), os.urandom(8)
    for export in range(3):
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        _quiet_spans(scope, 2)
        for n in range(30):
            scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root if n or export else b"",
                            name=f"step {export}.{n}")
        _quiet_spans(scope, 2)
        _grpc(autoheal, TRACE_METHOD, request.SerializeToString())
    logs = ExportLogsServiceRequest()
    log_scope = logs.resource_logs.add().scope_logs.add()
    for n in range(10):
        _log(log_scope, trace_id, root, f"line {n}")
    _grpc(autoheal, LOGS_METHOD, logs.SerializeToString())
    # 90 spans and 10 log records against a bound of 50: 50 dropped, spans first.
    assert autoheal.metric("autoheal_records_dropped_total") == 50
    request = ExportTraceServiceRequest()
    _failing(request.resource_spans.add().scope_spans.add(), "event", trace_id, parent=root)
    _grpc(autoheal, TRACE_METHOD, request.SerializeToString())
    issue = autoheal.wait_for_issues(1)[0]
    assert issue["exception_type"] == "ShapeEventError"
    assert "line 9" in issue["body"]
