"""What the official SDKs really send, through the real service: clock skew, log fields, request context, titles."""

from __future__ import annotations

import re

from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, now_nanos, post, span, traces_payload

MS = 1_000_000

NODE_STACK = """TypeError: Cannot read properties of undefined (reading 'zone')
    at quoteShipping (/srv/shop-api/releases/{release}/src/shipping.js:14:27)
    at /srv/shop-api/releases/{release}/src/routes/cart.js:22:18
    at Layer.handle [as handle_request] (/srv/shop-api/releases/{release}/node_modules/express/lib/router/layer.js:95:5)
    at patched (/srv/shop-api/releases/{release}/node_modules/@opentelemetry/instrumentation-express/build/src/instrumentation.js:305:28)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"""

PY_KEYERROR = """Traceback (most recent call last):
  File "/srv/shop/releases/{release}/shop/views.py", line 41, in checkout
    total = cart_total(session_cart(), prices)
  File "/srv/shop/releases/{release}/shop/cart.py", line 18, in cart_total
    return prices[sku]
KeyError: {key}
"""

JAVA_NPE = """java.lang.NullPointerException: Cannot invoke "com.acme.shop.catalog.Sku.price()" because the return value of "com.acme.shop.catalog.Catalog.find(String)" is null
\tat com.acme.shop.cart.CartService.total(CartService.java:42)
\tat com.acme.shop.cart.CartController.checkout(CartController.java:27)
\tat org.springframework.web.servlet.v6_0.OpenTelemetryHandlerMappingFilter.doFilter(OpenTelemetryHandlerMappingFilter.java:78)
\tat java.base/java.lang.Thread.run(Thread.java:1583)"""


def _send(autoheal, kind: str, payload) -> None:
    status, body = post(f"{autoheal.http_endpoint}/v1/{kind}", payload)
    assert status == 200, body


def _section(body: str, heading: str) -> str:
    return body.split(heading, 1)[1].split("\n## ", 1)[0]


def test_logs_before_the_error_survive_clock_skew_equal_times_and_keep_their_fields(autoheal):
    """Lines written just before the throw stay (ms log clock ahead of the span clock), in written order, with fields."""
    trace_id, server, handler, error_mw = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    t0 = (now_nanos() // MS) * MS
    thrown = t0 + 3 * MS + 400_000  # the span clock, sub-millisecond, runs ~1 ms behind Date.now()
    exc = {"type": "TypeError", "message": "Cannot read properties of undefined (reading 'zone')",
           "stacktrace": NODE_STACK.format(release="20261128101502")}
    resource = {"service.name": "shop-api", "service.instance.id": "api-1"}
    _send(autoheal, "logs", logs_payload([
        log_record("quote requested", trace_id=trace_id, span_id=server, time_nanos=t0,
                   attributes={"sku": "A-17", "raw_price": "12,50", "code.function.name": "logRequest",
                               "code.file.path": "/srv/shop-api/src/log.js"}),
        log_record("price parsed", trace_id=trace_id, span_id=handler, time_nanos=t0 + 2 * MS,
                   attributes={"price": 12.5}),
        log_record("looking up zone", trace_id=trace_id, span_id=handler, time_nanos=t0 + 4 * MS,
                   attributes={"note": "multi\nline `value`"}),
        log_record("same ms first", trace_id=trace_id, span_id=handler, time_nanos=t0 + 4 * MS),
        log_record("same ms second", trace_id=trace_id, span_id=handler, time_nanos=t0 + 4 * MS),
        log_record("error handler ran", trace_id=trace_id, span_id=error_mw, time_nanos=t0 + 4 * MS),
        log_record("line of another request", trace_id=new_trace_id(), time_nanos=t0 + MS),
    ], resource))
    _send(autoheal, "traces", traces_payload([
        span(trace_id, server, "GET /cart/:id/quote", kind=2, start=t0 - MS, error=True,
             attributes={"http.request.method": "GET", "url.path": "/cart/7/quote",
                         "url.query": "sku=A-17&token=tok123secret456", "http.route": "/cart/:id/quote",
                         "http.response.status_code": 500, "server.address": "shop.internal"}),
        {**span(trace_id, handler, "request handler - /cart/:id/quote", parent=server, start=t0, exception=exc),
         "events": [{"name": "exception", "timeUnixNano": str(thrown),
                     "attributes": [{"key": f"exception.{k}", "value": {"stringValue": v}} for k, v in exc.items()]}]},
        span(trace_id, error_mw, "middleware - errorHandler", parent=server, start=thrown + 200_000),
    ], resource))
    issue = autoheal.wait_for_issues(1)[0]
    logs = _section(issue["body"], "## Logs before the error")
    order = ["quote requested", "price parsed", "looking up zone", "same ms first", "same ms second"]
    assert all(line in logs for line in order), logs
    assert [logs.index(line) for line in order] == sorted(logs.index(line) for line in order)
    assert "error handler ran" not in logs and "another request" not in issue["body"]
    assert "sku=A-17 raw_price=12,50" in logs and "price=12.5" in logs
    assert 'note="multi\\nline `value`"' in logs  # escaped, one line
    assert "logRequest" not in issue["body"]  # where the log call was made is not context
    context = _section(issue["body"], "## Context of the failing operation")
    for expected in ("http.request.method | GET", "url.path | /cart/7/quote", "http.route | /cart/:id/quote",
                     "http.response.status_code | 500", "server.address | shop.internal"):
        assert expected.replace("/", "/") in context.replace("\\", ""), (expected, context)
    assert "sku=A-17&token=\\[redacted:token\\]" in context and "tok123secret456" not in issue["body"]


def test_same_millisecond_java_logs_follow_their_observed_time_and_an_exception_log_cuts_by_arrival(autoheal):
    """Millisecond timestamps refined by nanosecond observed times keep written order; lines logged after the exception log are cut."""
    trace_id, span_id = new_trace_id(), new_span_id()
    t0 = (now_nanos() // MS) * MS
    resource = {"service.name": "orders", "service.instance.id": "jvm-1"}

    def record(body: str, observed: int, **kw):
        return {**log_record(body, trace_id=trace_id, span_id=span_id, time_nanos=t0, **kw),
                "observedTimeUnixNano": str(t0 + observed)}

    exc_attrs = {"exception.type": "java.lang.IllegalStateException", "exception.message": "order 7 is closed"}
    # Arrival order differs from the written order only for the first two (a multi-threaded appender).
    _send(autoheal, "logs", logs_payload([
        record("validated order", 20_000),
        record("loaded order", 10_000),
        record("closing order", 30_000),
        record("order failed", 40_000, severity="ERROR", severity_number=17, attributes=exc_attrs),
        record("rolled back", 50_000),
    ], resource))
    _send(autoheal, "traces", traces_payload([span(trace_id, span_id, "OrderService.close", start=t0 - MS, exception={
        "type": "java.lang.IllegalStateException", "message": "order 7 is closed",
        "stacktrace": "java.lang.IllegalStateException: order 7 is closed\n\tat com.acme.OrderService.close(OrderService.java:30)"})],
        resource))
    logs = _section(autoheal.wait_for_issues(1)[0]["body"], "## Logs before the error")
    order = ["loaded order", "validated order", "closing order", "order failed"]
    assert [logs.index(line) for line in order] == sorted(logs.index(line) for line in order), logs
    assert "rolled back" not in logs


def test_older_http_conventions_code_of_log_records_and_jvm_command_line(autoheal):
    """Old HTTP attribute names appear; a log record's code.* never becomes the location; a classpath is summarised."""
    trace_id, span_id = new_trace_id(), new_span_id()
    classpath = ":".join(f"/opt/app/lib/dep-{i}.jar" for i in range(400))
    resource = {"service.name": "legacy", "process.command_args": ["java", "-javaagent:/opt/otel/opentelemetry-javaagent.jar",
                                                                   "-cp", classpath, "com.acme.Main"]}
    _send(autoheal, "traces", traces_payload([span(trace_id, span_id, "GET", kind=2, error=True, attributes={
        "http.method": "POST", "http.target": "/orders?id=7", "http.url": "http://legacy:8080/orders?id=7",
        "http.status_code": 500, "net.peer.name": "legacy"})], resource))
    _send(autoheal, "logs", logs_payload([log_record("order failed", trace_id=trace_id, span_id=span_id, severity="ERROR",
                                                     severity_number=17, attributes={
        "exception.type": "java.lang.IllegalStateException", "exception.message": "closed",
        "code.function": "logFailure", "code.namespace": "com.acme.Log", "code.lineno": 88})], resource))
    body = autoheal.wait_for_issues(1)[0]["body"]
    context = _section(body, "## Context of the failing operation").replace("\\", "")
    for expected in ("http.method | POST", "http.target | /orders?id=7", "http.status_code | 500", "net.peer.name | legacy"):
        assert expected in context, (expected, context)
    assert "logFailure" not in body and "code.lineno" not in body
    # The value is cut at decode (otlp.MAX_CONTEXT_CHARS), so the count shown is a lower bound.
    assert re.search(r"dep-0\.jar:… \(\d+\+ entries\)", context), context
    assert "dep-399.jar" not in body and "com.acme.Main" in context


def test_middleware_layers_recording_the_same_error_are_not_related_errors(autoheal):
    """Express records one error on every middleware span it passes and the server span answers 500: one issue, no related list."""
    trace_id, server = new_trace_id(), new_span_id()
    exc = {"type": "TypeError", "message": "Cannot read properties of undefined (reading 'zone')",
           "stacktrace": NODE_STACK.format(release="1")}
    spans = [span(trace_id, server, "GET /cart", kind=2, error=True,
                  attributes={"http.request.method": "GET", "http.response.status_code": 500})]
    spans += [span(trace_id, new_span_id(), name, parent=server, exception=exc)
              for name in ("middleware - patched", "middleware - jsonParser", "request handler - /cart")]
    _send(autoheal, "traces", traces_payload(spans, {"service.name": "shop-api"}))
    issues = autoheal.wait_for_issues(1)
    assert len(issues) == 1 and issues[0]["count"] == 1
    assert "Related errors" not in issues[0]["body"]
    assert "http.request.method | GET" in issues[0]["body"]


def test_go_wrapped_errors_and_slog_report_are_one_exception_with_a_readable_title(autoheal):
    """The span's *fmt.wrapError and the slog record's unwrapped *strconv.NumError are one exception and one group."""
    def occurrence(sku: str, price: str, with_log: bool) -> None:
        trace_id, span_id = new_trace_id(), new_span_id()
        message = f'quote sku "{sku}": parse price "{price}": strconv.ParseFloat: parsing "{price}": invalid syntax'
        resource = {"service.name": "pricing", "telemetry.sdk.language": "go"}
        _send(autoheal, "traces", traces_payload([span(trace_id, span_id, "GET /quote", kind=2, exception={
            "type": "*fmt.wrapError", "message": message, "stacktrace": ""})], resource))
        if with_log:  # the Go logs SDK derives exception.* from the error, unwrapping fmt's wrapper
            _send(autoheal, "logs", logs_payload([log_record("quote failed", trace_id=trace_id, span_id=span_id,
                                                             severity="ERROR", severity_number=17, attributes={
                "exception.message": message, "exception.type": "*strconv.NumError", "sku": sku})], resource))

    occurrence("A-17", "12,50", with_log=True)
    first = autoheal.wait_for_issues(1)
    assert first[0]["count"] == 1
    title = first[0]["title"]
    assert "wrapError" not in title and "NumError" not in title
    assert title.startswith("[autoheal] quote sku <str>: parse price <str>"), title
    occurrence("B-3", "n/a", with_log=False)
    issues = autoheal.wait_for_issues(lambda found: found and found[0]["count"] == 2)
    assert len(issues) == 1 and issues[0]["title"] == title


def test_titles_keep_code_names_mask_what_varies_and_name_the_culprit(autoheal):
    """'zone' and Java's helpful-NPE method names stay; a bare KeyError names its function; varying keys get masked."""
    py = {"service.name": "shop"}

    def keyerror(key: str, release: str) -> None:
        _send(autoheal, "traces", traces_payload([span(new_trace_id(), new_span_id(), "POST /checkout", exception={
            "type": "KeyError", "message": key, "stacktrace": PY_KEYERROR.format(key=key, release=release)})], py))

    keyerror("'x'", "2026.11.28-1")
    found = autoheal.wait_for_issues(1)
    assert found[0]["title"] == "[autoheal] KeyError: 'x' in cart_total"
    assert "**Where:** `cart_total` in" in found[0]["body"]
    keyerror("'y'", "2026.11.30-2")  # the next release: same group
    found = autoheal.wait_for_issues(lambda issues: issues and issues[0]["count"] == 2)
    assert len(found) == 1 and found[0]["title"] == "[autoheal] KeyError: <str> in cart_total"

    _send(autoheal, "traces", traces_payload([span(new_trace_id(), new_span_id(), "GET /cart", exception={
        "type": "TypeError", "message": "Cannot read properties of undefined (reading 'zone')",
        "stacktrace": NODE_STACK.format(release="1")})], {"service.name": "shop-api"}))
    _send(autoheal, "traces", traces_payload([span(new_trace_id(), new_span_id(), "CartController.checkout", exception={
        "type": "java.lang.NullPointerException", "message": JAVA_NPE.splitlines()[0].split(": ", 1)[1],
        "stacktrace": JAVA_NPE})], {"service.name": "shop-java"}))
    issues = {i["service"]: i for i in autoheal.wait_for_issues(3)}
    assert issues["shop-api"]["title"] == "[autoheal] TypeError: Cannot read properties of undefined (reading 'zone')"
    java = issues["shop-java"]
    assert '"com.acme.shop.catalog.Sku.price()"' in java["title"] and '"com.acme.shop.catalog.Catalog.find(String)"' in java["title"]
    assert "**Where:** `CartService.total` in `CartService.java:42`" in java["body"]
    assert "OpenTelemetryHandlerMappingFilter" not in _section(java["body"], "## Grouping")
