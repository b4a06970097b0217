"""Stack parsing and fingerprints, as pure functions over real-looking stack traces."""

from __future__ import annotations

from otel_autoheal.group.fingerprint import compute_fingerprint
from otel_autoheal.group.stacktrace import parse_stacktrace
from otel_autoheal.group.template import message_template

PY_A = '''Traceback (most recent call last):
  File "/home/alice/shop/app/cli.py", line {l1}, in main
    run()
  File "/home/alice/shop/app/orders.py", line {l2}, in run
    total = compute(order)
  File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode
    raise JSONDecodeError("Expecting value", s, err.value) from None
json.decoder.JSONDecodeError: Expecting value: line 1 column {col} (char {char})
'''

PY_CHAINED = '''Traceback (most recent call last):
  File "/srv/app/db.py", line 10, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/srv/app/main.py", line 5, in main
    db.connect()
  File "/srv/app/db.py", line 12, in connect
    raise DatabaseError("cannot reach db") from exc
app.db.DatabaseError: cannot reach db
'''

V8 = '''TypeError: Cannot read properties of undefined (reading '{prop}')
    at renderCart (http://127.0.0.1:{port}/static/app.{hash}.js:{line}:17)
    at async loadPage (http://127.0.0.1:{port}/static/app.{hash}.js:88:5)
    at http://127.0.0.1:{port}/node_modules/react-dom/index.js:1:2'''

GECKO = '''renderCart@http://127.0.0.1:{port}/static/app.js:{line}:17
loadPage@http://127.0.0.1:{port}/static/app.js:88:5
'''

JAVA = '''java.lang.IllegalStateException: order {id} is closed
\tat com.acme.shop.OrderService.close(OrderService.java:{line})
\tat com.acme.shop.Api.lambda$handle$0(Api.java:20)
\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)
Caused by: java.sql.SQLException: deadlock detected
\tat com.acme.shop.Db.update(Db.java:44)
\t... 3 more'''

GO = '''panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation code=0x1 addr=0x{addr} pc=0x4553d1]

goroutine 1 [running]:
main.(*Server).handle(0x0, 0xc000010000)
\t/home/bob/src/shop/server.go:{line} +0x11
main.main()
\t/home/bob/src/shop/main.go:9 +0x25
exit status 2'''


def fp(text: str, exc_type: str = "", message: str = "", service: str = "svc") -> str:
    return compute_fingerprint(service, parse_stacktrace(text, exc_type, message)).hex


def test_python_same_error_other_lines_and_values_groups_together():
    """Line numbers, columns and values in the message do not split a Python group."""
    a = fp(PY_A.format(l1=10, l2=20, col=1, char=0), "json.decoder.JSONDecodeError")
    b = fp(PY_A.format(l1=11, l2=25, col=7, char=6).replace("/home/alice", "/opt/ci"), "JSONDecodeError")
    assert a == b


def test_python_library_frames_do_not_count_when_in_app_frames_exist():
    """A change inside the stdlib frame does not split the group."""
    a = fp(PY_A.format(l1=1, l2=2, col=1, char=0))
    b = fp(PY_A.format(l1=1, l2=2, col=1, char=0).replace("raw_decode", "decode"))
    assert a == b


def test_python_different_call_path_splits():
    """The same exception reached through another function is another group."""
    a = fp(PY_A.format(l1=1, l2=2, col=1, char=0))
    b = fp(PY_A.format(l1=1, l2=2, col=1, char=0).replace("in run", "in run_batch"))
    assert a != b


def test_python_chained_cause_is_parsed_and_contributes():
    """Both exceptions of a chain are parsed, the reported one first, and the cause changes the key."""
    chain = parse_stacktrace(PY_CHAINED)
    assert [e.type for e in chain] == ["app.db.DatabaseError", "ConnectionRefusedError"]
    assert [f.function for f in chain[0].frames] == ["main", "connect"]
    other_cause = PY_CHAINED.replace("ConnectionRefusedError: [Errno 111] Connection refused", "TimeoutError: timed out")
    assert fp(PY_CHAINED) != fp(other_cause)


def test_v8_hashes_ports_and_lines_do_not_split():
    """Chromium stacks from another build (content hash), port and line group together."""
    a = fp(V8.format(prop="id", port=8000, hash="3f9a1c2b", line=10), "TypeError")
    b = fp(V8.format(prop="name", port=9123, hash="77aa00ee", line=99), "TypeError")
    assert a == b
    frames = parse_stacktrace(V8.format(prop="id", port=1, hash="ab12cd34", line=3))[0].frames
    assert [f.function for f in frames if f.in_app] == ["loadPage", "renderCart"]
    assert not frames[0].in_app  # node_modules


def test_firefox_safari_format_is_parsed():
    """``func@url:line:col`` frames are parsed innermost-last like V8's."""
    chain = parse_stacktrace(GECKO.format(port=1, line=5), "TypeError", "x is undefined")
    assert [(f.function, f.lineno) for f in chain[0].frames] == [("loadPage", 88), ("renderCart", 5)]
    assert chain[0].type == "TypeError" and chain[0].message == "x is undefined"


def test_java_frames_causes_and_library_filtering():
    """Java traces: class+method frames, runtime frames not in-app, Caused-by chain, lambda ids masked."""
    chain = parse_stacktrace(JAVA.format(id=1, line=30))
    assert [e.type for e in chain] == ["java.lang.IllegalStateException", "java.sql.SQLException"]
    assert chain[0].frames[-1].module == "com.acme.shop.OrderService"
    assert not chain[0].frames[0].in_app
    assert fp(JAVA.format(id=1, line=30)) == fp(JAVA.format(id=2, line=31).replace("lambda$handle$0", "lambda$handle$7"))


def test_go_panic_is_parsed():
    """Go panics: the panicking goroutine's frames, innermost last, addresses ignored."""
    chain = parse_stacktrace(GO.format(addr="0", line=42))
    assert [f.function for f in chain[0].frames] == ["main.main", "main.(*Server).handle"]
    assert fp(GO.format(addr="0", line=42)) == fp(GO.format(addr="18", line=50))


def test_recursion_depth_does_not_split_groups():
    """10,000 and 50 recursive frames give the same key; frames kept are bounded."""
    def deep(n: int) -> str:
        frame = '  File "/app/walk.py", line 3, in walk\n    walk(n - 1)\n'
        return "Traceback (most recent call last):\n" + frame * n + "RecursionError: maximum recursion depth exceeded\n"
    chain = parse_stacktrace(deep(10_000))
    assert len(chain[0].frames) <= 200
    assert fp(deep(10_000)) == fp(deep(50))


def test_no_stack_falls_back_to_message_template():
    """Without frames, type + masked message is the key (ids, numbers, quotes, paths masked)."""
    assert fp("", "tool_error", "user 4521 not found in '/var/db/users.db'") == fp(
        "", "tool_error", "user 17 not found in '/srv/x/users.db'")
    assert fp("", "tool_error", "user 1 not found") != fp("", "tool_error", "quota exceeded")
    assert message_template("id 550e8400-e29b-41d4-a716-446655440000 at 0x7ffe12 took 35ms") == "id <uuid> at <hex> took <num>ms"


def test_service_name_is_part_of_the_key():
    """The same error in two services is two groups."""
    text = PY_A.format(l1=1, l2=2, col=1, char=0)
    assert fp(text, service="a") != fp(text, service="b")


DOTNET = '''System.InvalidOperationException: Order {id} is closed ---> System.IO.IOException: disk full
   at Acme.Shop.Disk.Write(Byte[] data) in /src/Acme.Shop/Disk.cs:line {line}
   --- End of inner exception stack trace ---
   at Acme.Shop.OrderService.Close(Int32 id) in /src/Acme.Shop/OrderService.cs:line 42
   at System.Threading.Tasks.Task.Execute()'''

RUBY = '''/app/models/user.rb:{line}:in 'User#save': undefined method 'name' for nil (NoMethodError)
\tfrom /app/controllers/users_controller.rb:5:in 'UsersController#create'
\tfrom /usr/lib/ruby/gems/3.3.0/gems/actionpack-7.1/lib/action_controller/metal.rb:227:in 'dispatch\''''

PHP = '''PHP Fatal error:  Uncaught RuntimeException: order {id} missing in /var/www/app/src/Orders.php:{line}
Stack trace:
#0 /var/www/app/src/Api.php(30): App\\Orders->load()
#1 /var/www/app/vendor/slim/App.php(99): App\\Api->handle()
#2 {{main}}'''


def test_dotnet_inner_exception_and_frames():
    """.NET traces: outer and inner exceptions, frames per exception, System frames not in-app."""
    chain = parse_stacktrace(DOTNET.format(id=1, line=7))
    assert [e.type for e in chain] == ["System.InvalidOperationException", "System.IO.IOException"]
    assert [(f.function, f.in_app) for f in chain[0].frames] == [("Execute", False), ("Close", True)]
    assert [f.function for f in chain[1].frames] == ["Write"]
    assert fp(DOTNET.format(id=1, line=7)) == fp(DOTNET.format(id=99, line=8))


def test_ruby_backtrace():
    """Ruby traces: type from the trailing (Class), gems not in-app, innermost last."""
    chain = parse_stacktrace(RUBY.format(line=10))
    assert (chain[0].type, chain[0].message) == ("NoMethodError", "undefined method 'name' for nil")
    assert [(f.function, f.in_app) for f in chain[0].frames] == [
        ("dispatch", False), ("UsersController#create", True), ("User#save", True)]
    assert fp(RUBY.format(line=10)) == fp(RUBY.format(line=11))


def test_php_uncaught_exception():
    """PHP traces: header type/message, vendor frames not in-app, each call site named by the function it runs in."""
    chain = parse_stacktrace(PHP.format(id=3, line=12))
    assert (chain[0].type, chain[0].message) == ("RuntimeException", "order 3 missing")
    assert [(f.function, f.filename, f.in_app) for f in chain[0].frames] == [
        ("{main}", "/var/www/app/vendor/slim/App.php", False),
        ("App\\Api->handle", "/var/www/app/src/Api.php", True),
        ("App\\Orders->load", "/var/www/app/src/Orders.php", True)]
    assert fp(PHP.format(id=3, line=12)) == fp(PHP.format(id=4, line=13))


def test_browser_variants_safari_firefox_async_and_v8_runtime_frames():
    """Safari 'global code', Firefox async markers and V8 frames without a file are handled."""
    safari = parse_stacktrace("global code@http://h/app.js:12:18\nrenderCart@http://h/app.js:5:22\nforEach@[native code]",
                              "TypeError", "x")
    assert [f.function for f in safari[0].frames] == ["renderCart", "global code"]
    firefox = parse_stacktrace("renderCart@http://h/app.js:5:22\nasync*loadPage@http://h/app.js:9:3", "TypeError", "x")
    assert [f.function for f in firefox[0].frames] == ["loadPage", "renderCart"]
    v8 = parse_stacktrace("TypeError: x\n    at f (/srv/a.js:1:1)\n    at async Promise.all (index 0)")
    assert [(f.function, f.in_app) for f in v8[0].frames] == [("Promise.all", False), ("f", True)]


def test_java_suppressed_frames_stay_out_and_python_exception_group_message():
    """Suppressed exceptions don't add frames; an ExceptionGroup's message stops at its sub-exceptions."""
    java = parse_stacktrace("java.lang.RuntimeException: top\n\tat com.acme.A.run(A.java:10)\n"
                            "\tSuppressed: java.io.IOException: close\n\t\tat com.acme.A.close(A.java:20)\n")
    assert [f.function for f in java[0].frames] == ["run"]
    group = parse_stacktrace('  + Exception Group Traceback (most recent call last):\n'
                             '  |   File "/app/m.py", line 1, in main\n  |     raise EG\n'
                             '  | ExceptionGroup: many (2 sub-exceptions)\n  +-+---- 1 ----\n    | ValueError: 1\n')
    assert (group[0].type, group[0].message) == ("ExceptionGroup", "many (2 sub-exceptions)")


def test_title_keeps_a_span_name_that_looks_like_data():
    """A span name is constant by convention, so its digits stay in the title; other numbers are masked."""
    from otel_autoheal.group.template import title_template

    assert title_template("okey-dokey-0 failed", constants=["okey-dokey-0"]) == "okey-dokey-0 failed"
    assert title_template("okey-dokey-0 failed") == "okey-dokey-<num> failed"
    assert title_template("job-7 failed after 3 tries", constants=["job-7"]) == "job-7 failed after <num> tries"


def test_logs_of_another_logger_arriving_after_the_exception_log_still_precede_it():
    """SDKs export a batch grouped by logger, so a line of another logger arriving after the exception log counts by time."""
    from otel_autoheal.extract import extract_exceptions, preceding_logs
    from otel_autoheal.model import TraceData
    from otel_autoheal.otlp import LogData, SpanData

    resource = {"service.name": "shop", "service.instance.id": "i-1"}
    trace_id, server, child, t0 = "ab" * 16, "01" * 8, "02" * 8, 1_700_000_000_000_000_000

    def line(body: str, span_id: str, offset: int, scope: str, exception: bool = False) -> LogData:
        attributes = {"exception.type": "KeyError", "exception.message": "'ZZ'"} if exception else {}
        return LogData(trace_id, span_id, t0 + offset, 9, "INFO", body, attributes, resource,
                       observed_time_unix_nano=t0 + offset + 1000, scope=scope)

    spans = {
        server: SpanData(trace_id=trace_id, span_id=server, parent_span_id="", name="GET /ship", kind="SERVER",
                         start_unix_nano=t0, end_unix_nano=t0 + 9_000_000, is_error=True,
                         attributes={}, resource=resource, events=[]),
        child: SpanData(trace_id=trace_id, span_id=child, parent_span_id=server, name="zone_for", kind="INTERNAL",
                        start_unix_nano=t0 + 1_000_000, end_unix_nano=t0 + 3_000_000, is_error=True,
                        attributes={}, resource=resource,
                        events=[("exception", t0 + 3_000_000, {"exception.type": "KeyError", "exception.message": "'ZZ'"})]),
    }
    logs = [
        line("shipping order", server, 500_000, "shop.app"),
        line("shipping failed", server, 4_000_000, "shop.app", exception=True),
        line("looking up shipping zone", child, 2_000_000, "shop.shipping"),  # arrived last, written second
        line("request done", server, 8_000_000, "shop.app"),
    ]
    trace = TraceData(trace_id, spans, logs)
    head = next(r for r in extract_exceptions(trace) if r.span_id == child)
    assert [line.body for line in preceding_logs(head, trace, 10)] == [
        "shipping order", "looking up shipping zone", "shipping failed"]
