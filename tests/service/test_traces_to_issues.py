"""Raw OTLP/JSON traces and logs → issues: dedup, folding, preceding logs and fallbacks."""

from __future__ import annotations

import json

from otlp_payloads import (
    log_record,
    logs_payload,
    new_span_id,
    new_trace_id,
    now_nanos,
    post,
    span,
    traces_payload,
)

PY_STACK = '''Traceback (most recent call last):
  File "/srv/tools/server.py", line 40, in divide_tool
    return _divide(a, b)
  File "/srv/tools/server.py", line 12, in _divide
    return a / b
ZeroDivisionError: division by zero
'''
JS_STACK = '''McpError: MCP error -32603: tool failed
    at callTool (http://127.0.0.1:9000/app.js:10:5)
    at onClick (http://127.0.0.1:9000/app.js:20:3)'''


def _send_traces(autoheal, payload, **kw):
    status, body = post(f"{autoheal.http_endpoint}/v1/traces", payload, **kw)
    assert status == 200, body
    return body


def _send_logs(autoheal, payload, **kw):
    status, body = post(f"{autoheal.http_endpoint}/v1/logs", payload, **kw)
    assert status == 200, body


def test_span_event_and_log_of_same_exception_count_once(autoheal):
    """The same exception as a span event and as an exception log record is one occurrence."""
    trace_id, span_id = new_trace_id(), new_span_id()
    exc = {"type": "builtins.ZeroDivisionError", "message": "division by zero", "stacktrace": PY_STACK}
    _send_traces(autoheal, traces_payload([span(trace_id, span_id, "tools/call divide", exception=exc)]))
    _send_logs(autoheal, logs_payload([log_record("Tool 'divide' raised", trace_id=trace_id, span_id=span_id,
                                                  severity="ERROR", severity_number=17,
                                                  attributes={"exception.type": "ZeroDivisionError",
                                                              "exception.message": "division by zero",
                                                              "exception.stacktrace": PY_STACK})]))
    issues = autoheal.wait_for_issues(1)
    assert issues[0]["count"] == 1
    assert issues[0]["trace_ids"] == [trace_id]


def test_exception_log_without_span_event_is_an_issue(autoheal):
    """Log-based exceptions (the newer semantic convention) are enough on their own, with gzip JSON."""
    trace_id = new_trace_id()
    _send_logs(autoheal, logs_payload([
        log_record("starting import", trace_id=trace_id, time_nanos=now_nanos() - 2_000_000),
        log_record("import failed", trace_id=trace_id, severity="ERROR", severity_number=17,
                   attributes={"exception.type": "KeyError", "exception.message": "'sku'",
                               "exception.stacktrace": PY_STACK.replace("ZeroDivisionError: division by zero", "KeyError: 'sku'")}),
    ], {"service.name": "importer"}), compress=True)
    issue = autoheal.wait_for_issues(1)[0]
    assert issue["service"] == "importer" and issue["exception_type"] == "KeyError"
    assert "starting import" in issue["body"]


def test_client_error_folds_into_server_root_cause(autoheal):
    """A browser MCP client span that failed because its server span failed is one issue, headed by the server."""
    trace_id, client_id, server_id = new_trace_id(), new_span_id(), new_span_id()
    client = span(trace_id, client_id, "tools/call divide", kind=3,
                  attributes={"mcp.method.name": "tools/call", "gen_ai.tool.name": "divide", "url.full": "http://127.0.0.1:9000/"},
                  exception={"type": "McpError", "message": "MCP error -32603: tool failed", "stacktrace": JS_STACK})
    server = span(trace_id, server_id, "tools/call divide", parent=client_id, kind=2,
                  attributes={"gen_ai.tool.name": "divide", "gen_ai.tool.call.arguments": '{"a": 1, "b": 0}'},
                  exception={"type": "ZeroDivisionError", "message": "division by zero", "stacktrace": PY_STACK})
    _send_traces(autoheal, traces_payload([client], {"service.name": "web", "autoheal.source": "browser"}))
    _send_traces(autoheal, traces_payload([server], {"service.name": "tools", "autoheal.source": "mcp"}))
    issues = autoheal.wait_for_issues(1)
    assert len(issues) == 1
    issue = issues[0]
    assert issue["exception_type"] == "ZeroDivisionError" and issue["service"] == "tools"
    body = issue["body"]
    assert "Related errors in the same trace" in body and "McpError" in body
    assert "_divide" in body and "divide_tool" in body


def test_unrelated_errors_in_one_trace_stay_separate(autoheal):
    """Two different exceptions on sibling spans of one trace are two issues."""
    trace_id, root = new_trace_id(), new_span_id()
    spans = [
        span(trace_id, root, "batch"),
        span(trace_id, new_span_id(), "a", parent=root, exception={"type": "KeyError", "message": "'x'", "stacktrace": ""}),
        span(trace_id, new_span_id(), "b", parent=root, exception={"type": "OSError", "message": "disk full", "stacktrace": ""}),
    ]
    _send_traces(autoheal, traces_payload(spans))
    issues = autoheal.wait_for_issues(2)
    assert sorted(i["exception_type"] for i in issues) == ["KeyError", "OSError"]


def test_preceding_logs_right_trace_right_order_last_n(autoheal):
    """Only logs of the failing trace at or before the error, oldest first, at most N."""
    trace_id, other_trace, span_id = new_trace_id(), new_trace_id(), new_span_id()
    start = now_nanos()
    records = [log_record(f"step {i}", trace_id=trace_id, time_nanos=start + i * 1000) for i in range(60)]
    records.reverse()  # arrival order must not matter
    records.append(log_record("other trace secret step", trace_id=other_trace, time_nanos=start + 5))
    records.append(log_record("after the error", trace_id=trace_id, time_nanos=start + 10_000_000_000))
    _send_logs(autoheal, logs_payload(records))
    _send_traces(autoheal, traces_payload([span(trace_id, span_id, "job", start=start + 100_000,
                                                exception={"type": "RuntimeError", "message": "boom", "stacktrace": ""})]))
    body = autoheal.wait_for_issues(1)[0]["body"]
    logs_section = body.split("## Logs before the error", 1)[1].split("##", 1)[0]
    assert "step 59" in logs_section and "step 10" in logs_section
    assert "step 9\n" not in logs_section and "step 0\n" not in logs_section  # last 50 only
    assert logs_section.index("step 10") < logs_section.index("step 59")
    assert "other trace" not in body and "after the error" not in body


def test_fallback_to_same_instance_logs_without_trace(autoheal):
    """A trace without logs shows trace-less logs of the same service.instance.id, never other traces' logs."""
    trace_id = new_trace_id()
    start = now_nanos()
    resource = {"service.name": "cli", "service.instance.id": "host-1:42"}
    _send_logs(autoheal, logs_payload([log_record("reading config", time_nanos=start)], resource))
    _send_logs(autoheal, logs_payload([log_record("other instance line", time_nanos=start)],
                                      {"service.name": "cli", "service.instance.id": "host-2:7"}))
    _send_logs(autoheal, logs_payload([log_record("line of another trace", trace_id=new_trace_id(), time_nanos=start)], resource))
    _send_traces(autoheal, traces_payload([span(trace_id, new_span_id(), "cmd", start=start + 1_000_000,
                                                exception={"type": "ValueError", "message": "bad", "stacktrace": ""})], resource))
    body = autoheal.wait_for_issues(1)[0]["body"]
    assert "reading config" in body
    assert "other instance line" not in body and "line of another trace" not in body


def test_error_status_without_exception_uses_message_template(autoheal):
    """An isError tool result (ERROR status, error.type=tool_error, no stack) groups by masked message."""
    for user in (17, 4242):
        _send_traces(autoheal, traces_payload([span(new_trace_id(), new_span_id(), "tools/call lookup", error=True,
                                                    attributes={"error.type": "tool_error"})]))
        del user
    issues = autoheal.wait_for_issues(lambda i: i and i[0]["count"] == 2)
    assert len(issues) == 1 and issues[0]["exception_type"] == "tool_error"


def test_same_exception_on_nested_spans_is_one_occurrence(autoheal):
    """An exception recorded on the span where it was raised and on each parent it escaped counts once."""
    trace_id, outer, inner = new_trace_id(), new_span_id(), new_span_id()
    exc = {"type": "ZeroDivisionError", "message": "division by zero", "stacktrace": PY_STACK}
    _send_traces(autoheal, traces_payload([span(trace_id, outer, "outer", exception=exc),
                                           span(trace_id, inner, "inner", parent=outer, exception=exc)]))
    issues = autoheal.wait_for_issues(1)
    assert issues[0]["count"] == 1
    assert "inner" in issues[0]["body"]


def test_restart_keeps_groups_and_counts(autoheal_factory, tmp_path):
    """Stopping and starting the service on the same state keeps issues; new occurrences update them."""
    state = tmp_path / "persist"
    first = autoheal_factory(state_dir=state)
    exc = {"type": "ValueError", "message": "bad", "stacktrace": PY_STACK}
    _send_traces(first, traces_payload([span(new_trace_id(), new_span_id(), "x", exception=exc)]))
    before = first.wait_for_issues(1)
    first.stop()
    second = autoheal_factory(state_dir=state)
    assert second.issues() == before
    _send_traces(second, traces_payload([span(new_trace_id(), new_span_id(), "x", exception=exc)]))
    after = second.wait_for_issues(lambda i: i and i[0]["count"] == 2)
    assert len(after) == 1 and after[0]["id"] == before[0]["id"]


def test_json_response_and_metrics(autoheal):
    """OTLP/JSON gets a JSON answer and /metrics counts spans, logs, exceptions and issues."""
    body = _send_traces(autoheal, traces_payload([span(new_trace_id(), new_span_id(), "x",
                                                       exception={"type": "E", "message": "m", "stacktrace": ""})]))
    assert json.loads(body) == {}
    autoheal.wait_for_issues(1)
    assert autoheal.metric("autoheal_spans_received_total") == 1
    assert autoheal.metric("autoheal_issues_filed_total") == 1
    assert autoheal.metric("autoheal_exceptions_seen_total") == 1


def test_exception_log_without_trace_uses_instance_logs(autoheal):
    """An exception log with no trace id shows earlier trace-less logs of its own instance only."""
    start = now_nanos()
    resource = {"service.name": "worker", "service.instance.id": "w-9"}
    _send_logs(autoheal, logs_payload([log_record("picked job 7", time_nanos=start)], resource))
    _send_logs(autoheal, logs_payload([log_record("job of another worker", time_nanos=start)],
                                      {"service.name": "worker", "service.instance.id": "w-1"}))
    _send_logs(autoheal, logs_payload([log_record("job failed", time_nanos=start + 1000, severity="ERROR",
                                                  severity_number=17,
                                                  attributes={"exception.type": "TimeoutError",
                                                              "exception.message": "job 7 timed out"})], resource))
    issue = autoheal.wait_for_issues(1)[0]
    assert issue["exception_type"] == "TimeoutError" and issue["trace_ids"] == []
    assert "picked job 7" in issue["body"] and "another worker" not in issue["body"]


def test_spans_arriving_after_logs_are_merged_not_double_counted(autoheal):
    """Logs processed first and the trace's spans arriving after trace_wait (tail sampling) count once."""
    trace_id, span_id = new_trace_id(), new_span_id()
    start = now_nanos()
    _send_logs(autoheal, logs_payload([
        log_record("loading", trace_id=trace_id, span_id=span_id, time_nanos=start),
        log_record("failed", trace_id=trace_id, span_id=span_id, time_nanos=start + 2000, severity="ERROR",
                   severity_number=17, attributes={"exception.type": "KeyError", "exception.message": "'id'",
                                                   "exception.stacktrace": PY_STACK.replace("ZeroDivisionError: division by zero", "KeyError: 'id'")}),
    ]))
    first = autoheal.wait_for_issues(1)
    _send_traces(autoheal, traces_payload([span(trace_id, span_id, "sync", start=start, exception={
        "type": "builtins.KeyError", "message": "'id'", "stacktrace": ""})]))
    _send_traces(autoheal, traces_payload([span(new_trace_id(), new_span_id(), "later", exception={
        "type": "OSError", "message": "disk", "stacktrace": ""})]))
    issues = autoheal.wait_for_issues(2)
    assert autoheal.metric("autoheal_late_traces_total") == 1
    keyerror = [i for i in issues if i["exception_type"] == "KeyError"]
    assert len(keyerror) == 1 and keyerror[0]["count"] == 1 and keyerror[0]["id"] == first[0]["id"]


JAVA_STACK = """java.lang.NumberFormatException: For input string: "9EUR"
\tat java.base/jdk.internal.math.FloatingDecimal.readJavaFormatString(FloatingDecimal.java:2054)
\tat java.base/java.lang.Double.parseDouble(Double.java:651)
\tat shop.Pricing.parsePrice(Pricing.java:17)
\tat shop.Shop.checkout(Shop.java:41)
"""


def test_exception_log_arriving_after_its_trace_was_processed_counts_once(autoheal):
    """An exception log sent after its trace's span event was processed is the same exception, not a second occurrence."""
    trace_id, server_id, child_id = new_trace_id(), new_span_id(), new_span_id()
    start = now_nanos()
    resource = {"service.name": "shop-java", "service.instance.id": "jvm-1"}
    exception = {"type": "java.lang.NumberFormatException", "message": 'For input string: "9EUR"',
                 "stacktrace": JAVA_STACK}
    _send_traces(autoheal, traces_payload([
        span(trace_id, server_id, "GET /checkout", kind=2, error=True, start=start),
        span(trace_id, child_id, "Pricing.parsePrice", parent=server_id, start=start + 1000, exception=exception),
    ], resource))
    first = autoheal.wait_for_issues(1)
    # The logging bridge writes the caught exception on the server span, its stack formatted its own way.
    _send_logs(autoheal, logs_payload([log_record(
        "checkout failed", trace_id=trace_id, span_id=server_id, time_nanos=start + 3_000_000, severity="ERROR",
        severity_number=17, attributes={"exception.type": exception["type"], "exception.message": exception["message"],
                                        "exception.stacktrace": JAVA_STACK + "\tat shop.Shop.lambda$main$0(Shop.java:24)\n"})],
        resource))
    _send_traces(autoheal, traces_payload([span(new_trace_id(), new_span_id(), "later", exception={
        "type": "OSError", "message": "disk", "stacktrace": ""})]))
    issues = autoheal.wait_for_issues(2)
    assert autoheal.metric("autoheal_late_traces_total") == 1
    price = [i for i in issues if "NumberFormatException" in i["exception_type"]]
    assert len(price) == 1 and price[0]["count"] == 1 and price[0]["id"] == first[0]["id"]


def test_acknowledged_errors_survive_sigkill(autoheal_factory, tmp_path):
    """An error acknowledged but not yet processed when the service is SIGKILLed is filed after restart, once."""
    import signal

    state = tmp_path / "crash"
    first = autoheal_factory(state_dir=state, trace_wait=60)
    trace_id, span_id = new_trace_id(), new_span_id()
    _send_traces(first, traces_payload([span(trace_id, span_id, "pay", exception={
        "type": "ValueError", "message": "declined", "stacktrace": PY_STACK})]))
    _send_logs(first, logs_payload([log_record("charge failed", trace_id=trace_id, severity="ERROR",
                                                severity_number=17, attributes={"exception.type": "KeyError",
                                                                                "exception.message": "'card'"})]))
    assert first.issues() == []
    first.stop(signal.SIGKILL)
    second = autoheal_factory(state_dir=state, trace_wait=0.5)
    issues = second.wait_for_issues(2)
    assert sorted(i["exception_type"] for i in issues) == ["KeyError", "ValueError"]
    assert all(i["count"] == 1 and i["trace_ids"] == [trace_id] for i in issues)
    assert second.metric("autoheal_journal_replayed_total") == 2
    second.stop()
    third = autoheal_factory(state_dir=state, trace_wait=0.5)  # the journal was cleared: nothing replays
    assert third.metric("autoheal_journal_replayed_total") == 0
    assert [i["count"] for i in third.issues()] == [1, 1]
