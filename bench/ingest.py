"""Ingest of otel-autoheal vs bare parse-only receivers, side by side, with trace ids new on every send.

Three paths, each against its own bare receiver that only parses the protobuf body:

- ``grpc-traces``: OTLP/gRPC trace exports of 100 traces of 6 spans (a server span, middleware,
  a handler, two database calls and an outgoing HTTP call, with the attributes the SDKs set);
  1% of the traces fail with an exception on the handler span (ERROR status on it and on the
  server span) and send their 5 log records in a logs export. Baseline: a bare grpcio receiver.
- ``grpc-logs``: OTLP/gRPC logs exports of 200 records (realistic bodies and attributes, in
  traces), 0.5% of them exception records. Baseline: the same bare grpcio receiver.
- ``http-traces``: the ``grpc-traces`` load as OTLP/HTTP protobuf POSTs over keep-alive
  connections. Baseline: a bare uvicorn (httptools, uvloop) ASGI app that only parses.

Every request is built once as a template whose trace ids share an 8-byte placeholder; each send
replaces it with 8 fresh random bytes, so every trace is new, as in real traffic: the service must
assemble it, wait ``trace_wait`` and let it go (or process it when it failed).

All receivers run at once and take turns in alternating rounds, so noise from other work on the
shared machine hits them alike; medians of the rounds are compared. Each receiver's own CPU time
(user + system, /proc) per ingested span or record is printed too: it moves far less with the
machine's load than throughput. Then, for this checkout and each ``--before`` one, peak RSS at the
maximum rate of the traces path, how many traces it had to process before their ``trace_wait`` was
over (``autoheal_traces_evicted_total``), how many traces without an error it forgot before then
(``autoheal_traces_forgotten_total``), and the estimated bytes it held per trace held.

    python bench/ingest.py [--seconds 4] [--rounds 5] [--clients 2] [--rss-seconds 60] [--paths ...]
                           [--before OLD_CHECKOUT] [--held-bytes N]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

HERE = Path(__file__).resolve().parents[1]
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
HTTP_PATHS = {TRACE_METHOD: "/v1/traces", LOGS_METHOD: "/v1/logs"}
TRACES_PER_REQUEST = 100
SPANS_PER_TRACE = 6
LOGS_PER_FAILED_TRACE = 5
RECORDS_PER_LOG_REQUEST = 200
TRACE_ERROR_SHARE = 0.01
LOG_EXCEPTION_SHARE = 0.005
#: Templates per client: enough that the mix of failing traces is close to its share.
TEMPLATES = 20

BARE_GRPC = textwrap.dedent("""
    from concurrent import futures
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
    class T(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            return trace_service_pb2.ExportTraceServiceResponse()
    class L(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            return logs_service_pb2.ExportLogsServiceResponse()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(T(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(L(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"ready grpc=127.0.0.1:{port}", flush=True)
    server.wait_for_termination()
""")
#: Kept under its old name for other benchmarks.
BARE_RECEIVER = BARE_GRPC

BARE_UVICORN = textwrap.dedent("""
    import socket
    import uvicorn
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    async def app(scope, receive, send):
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        kind = ExportLogsServiceRequest if scope["path"] == "/v1/logs" else ExportTraceServiceRequest
        kind.FromString(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    sock = socket.create_server(("127.0.0.1", 0))
    print(f"ready http=127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, http="httptools", loop="auto", lifespan="off", log_config=None,
                                  access_log=False)).run(sockets=[sock])
""")


# -- load ---------------------------------------------------------------------------------------
@dataclass
class Send:
    """One unit of load: requests sent in order, whose trace ids share ``placeholder``."""

    placeholder: bytes
    requests: list[tuple[str, bytes]]
    #: Spans (traces path) or log records (logs path) it carries.
    count: int


def _attrs(target, pairs) -> None:  # type: ignore[no-untyped-def]
    for key, value in pairs:
        kv = target.attributes.add(key=key)
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value


_RESOURCE = (("service.name", "checkout"), ("service.version", "2.14.1"), ("service.instance.id", "checkout-7f9c-2"),
             ("deployment.environment.name", "production"), ("telemetry.sdk.language", "python"),
             ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.version", "1.27.0"),
             ("host.name", "ip-10-0-3-17"), ("process.pid", 4242))
_STACK = ('Traceback (most recent call last):\n'
          '  File "/app/checkout/handlers.py", line 88, in place_order\n    total = pricing.total(cart)\n'
          '  File "/app/checkout/pricing.py", line 41, in total\n    return sum(item.price for item in cart.items)\n'
          '  File "/app/checkout/pricing.py", line 41, in <genexpr>\n    return sum(item.price for item in cart.items)\n'
          "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'\n")


def _trace_send(rnd: random.Random, failing_traces: set[int]) -> Send:
    placeholder = rnd.randbytes(8)
    now = time.time_ns()
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    _attrs(rs.resource, _RESOURCE)
    scope = rs.scope_spans.add()
    scope.scope.name = "opentelemetry.instrumentation.flask"
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    _attrs(rl.resource, _RESOURCE)
    log_scope = rl.scope_logs.add()
    log_scope.scope.name = "checkout.handlers"
    for t in range(TRACES_PER_REQUEST):
        trace_id = placeholder + rnd.randbytes(8)
        failing = t in failing_traces
        ids = [rnd.randbytes(8) for _ in range(SPANS_PER_TRACE)]
        shape = [  # (name, kind, parent index, attributes)
            ("POST /api/orders", 2, -1, (("http.request.method", "POST"), ("http.route", "/api/orders"),
                                         ("url.path", "/api/orders"), ("server.address", "shop.example.com"),
                                         ("http.response.status_code", 500 if failing else 200),
                                         ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"))),
            ("auth_middleware", 1, 0, (("code.function", "authenticate"),)),
            ("place_order", 1, 1, (("code.function", "place_order"), ("code.filepath", "/app/checkout/handlers.py"))),
            ("SELECT orders", 3, 2, (("db.system", "postgresql"), ("db.namespace", "shop"),
                                     ("db.query.text", "SELECT id, total FROM orders WHERE customer_id = $1"))),
            ("INSERT order_items", 3, 2, (("db.system", "postgresql"), ("db.namespace", "shop"),
                                          ("db.query.text", "INSERT INTO order_items (order_id, sku) VALUES ($1, $2)"))),
            ("GET", 3, 2, (("http.request.method", "GET"), ("url.full", "http://pricing:8080/v1/prices"),
                           ("http.response.status_code", 200))),
        ]
        for index, (name, kind, parent, attributes) in enumerate(shape):
            span = scope.spans.add(trace_id=trace_id, span_id=ids[index], parent_span_id=ids[parent] if parent >= 0 else b"",
                                   name=name, kind=kind, start_time_unix_nano=now + index * 1000,
                                   end_time_unix_nano=now + 900_000 - index * 1000)
            _attrs(span, attributes)
            span.status.SetInParent()  # UNSET, sent with every span as the official SDKs' exporters do
            if failing and index in (0, 2):
                span.status.code = 2
            if failing and index == 2:
                span.status.message = "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"
                event = span.events.add(name="exception", time_unix_nano=now + 500_000)
                _attrs(event, (("exception.type", "TypeError"),
                               ("exception.message", "unsupported operand type(s) for +: 'int' and 'NoneType'"),
                               ("exception.stacktrace", _STACK)))
        if failing:
            for n in range(LOGS_PER_FAILED_TRACE):
                record = log_scope.log_records.add(time_unix_nano=now + 100_000 + n, observed_time_unix_nano=now + 100_000 + n,
                                                   severity_number=9, severity_text="INFO", trace_id=trace_id, span_id=ids[2])
                record.body.string_value = f"pricing cart {rnd.randint(1, 10**6)} with {n + 1} items"
                _attrs(record, (("code.function", "place_order"), ("code.lineno", 80 + n)))
    requests = [(TRACE_METHOD, traces.SerializeToString())]
    if log_scope.log_records:
        requests.append((LOGS_METHOD, logs.SerializeToString()))
    return Send(placeholder, requests, TRACES_PER_REQUEST * SPANS_PER_TRACE)


_LOG_LINES = ("GET /api/items/%d 200 in %d ms", "cache miss for key product:%d (%d ms)",
              "user %d added item to cart in %d ms", "payment authorised for order %d after %d ms",
              "slow query on orders (%d rows, %d ms)")


def _log_send(rnd: random.Random, exception_records: set[int]) -> Send:
    placeholder = rnd.randbytes(8)
    now = time.time_ns()
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    _attrs(rl.resource, _RESOURCE)
    log_scope = rl.scope_logs.add()
    log_scope.scope.name = "checkout.handlers"
    trace_id = span_id = b""
    for n in range(RECORDS_PER_LOG_REQUEST):
        if n % 4 == 0:  # four records a trace (a request's log lines)
            trace_id, span_id = placeholder + rnd.randbytes(8), rnd.randbytes(8)
        record = log_scope.log_records.add(time_unix_nano=now + n * 1000, observed_time_unix_nano=now + n * 1000 + 7,
                                           trace_id=trace_id, span_id=span_id, flags=1)
        if n in exception_records:
            record.severity_number, record.severity_text = 17, "ERROR"
            record.body.string_value = "order placement failed"
            _attrs(record, (("exception.type", "TypeError"),
                            ("exception.message", "unsupported operand type(s) for +: 'int' and 'NoneType'"),
                            ("exception.stacktrace", _STACK), ("code.function", "place_order"),
                            ("code.filepath", "/app/checkout/handlers.py"), ("code.lineno", 91)))
        else:
            record.severity_number, record.severity_text = 9, "INFO"
            record.body.string_value = rnd.choice(_LOG_LINES) % (rnd.randint(1, 10**6), rnd.randint(1, 900))
            _attrs(record, (("code.function", "handle_request"), ("code.filepath", "/app/checkout/views.py"),
                            ("code.lineno", rnd.randint(10, 400)), ("thread.name", "uwsgi-worker-3"),
                            ("http.route", "/api/items/{id}")))
    return Send(placeholder, [(LOGS_METHOD, logs.SerializeToString())], RECORDS_PER_LOG_REQUEST)


def build_sends(kind: str, seed: int) -> list[Send]:
    """``TEMPLATES`` sends of one kind; exactly the configured share of traces or records fails."""
    rnd = random.Random(seed)
    if kind == "traces":
        total = TEMPLATES * TRACES_PER_REQUEST
        failing = set(rnd.sample(range(total), round(total * TRACE_ERROR_SHARE)))
        return [_trace_send(rnd, {i % TRACES_PER_REQUEST for i in failing if i // TRACES_PER_REQUEST == n})
                for n in range(TEMPLATES)]
    total = TEMPLATES * RECORDS_PER_LOG_REQUEST
    failing = set(rnd.sample(range(total), round(total * LOG_EXCEPTION_SHARE)))
    return [_log_send(rnd, {i % RECORDS_PER_LOG_REQUEST for i in failing if i // RECORDS_PER_LOG_REQUEST == n})
            for n in range(TEMPLATES)]


def fresh(send: Send) -> list[tuple[str, bytes]]:
    """The send's requests with trace ids never used before (one C-level replace per body)."""
    new = os.urandom(8)
    return [(method, body.replace(send.placeholder, new)) for method, body in send.requests]


# -- clients ------------------------------------------------------------------------------------
def _grpc_client(endpoint: str, kind: str, seconds: float, seed: int, result: mp.Queue) -> None:  # type: ignore[type-arg]
    sends = build_sends(kind, seed)
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)])
    stubs = {m: channel.unary_unary(m, request_serializer=None, response_deserializer=None)
             for m in (TRACE_METHOD, LOGS_METHOD)}
    count = errors = i = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        send = sends[i % len(sends)]
        i += 1
        try:
            for method, body in fresh(send):
                stubs[method](body, timeout=30)
            count += send.count
        except grpc.RpcError:
            errors += 1
    channel.close()
    result.put((count, errors))


def _http_client(address: str, kind: str, seconds: float, seed: int, result: mp.Queue) -> None:  # type: ignore[type-arg]
    sends = build_sends(kind, seed)
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    count = errors = i = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        send = sends[i % len(sends)]
        i += 1
        try:
            ok = True
            for method, body in fresh(send):
                connection.request("POST", HTTP_PATHS[method], body, headers)
                response = connection.getresponse()
                response.read()
                ok = ok and response.status == 200
            if ok:
                count += send.count
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.close()
    result.put((count, errors))


def drive(protocol: str, address: str, kind: str, seconds: float, clients: int) -> tuple[float, int]:
    """Load one receiver from ``clients`` processes; returns (spans or records per second, failed sends)."""
    target: Callable[..., None] = _grpc_client if protocol == "grpc" else _http_client
    queue: mp.Queue[tuple[int, int]] = mp.Queue()
    procs = [mp.Process(target=target, args=(address, kind, seconds, seed, queue)) for seed in range(clients)]
    start = time.monotonic()
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return sum(r[0] for r in results) / (time.monotonic() - start), sum(r[1] for r in results)


# -- servers ------------------------------------------------------------------------------------
def launch(args: list[str], cwd: Path = HERE, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            cwd=cwd, env={**os.environ, **(env or {})})
    line = proc.stdout.readline() if proc.stdout else ""
    found = dict(re.findall(r"(grpc|http)=(127\.0\.0\.1:\d+)", line))
    if not found:
        halt(proc)
        raise SystemExit(f"server did not start: {line!r}")
    return proc, found


def halt(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def autoheal_cmd(state: str, trace_wait: float = 2.0) -> list[str]:
    return [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
            "--state", state, "--trace-wait", f"{trace_wait:g}", "--log-level", "WARNING"]


def metric(http_address: str, name: str) -> float:
    """Sum of a metric's samples from the service's ``/metrics``."""
    text = urllib.request.urlopen(f"http://{http_address}/metrics", timeout=30).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and (line[len(name)] in " {"))


PATHS = {  # path → (protocol, load kind, unit)
    "grpc-traces": ("grpc", "traces", "spans"),
    "grpc-logs": ("grpc", "logs", "records"),
    "http-traces": ("http", "traces", "spans"),
}


@dataclass
class Row:
    name: str
    protocol: str
    address: str
    pid: int
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    errors: int = 0

    def run(self, kind: str, seconds: float, clients: int) -> None:
        cpu_before, started = cpu_seconds(self.pid), time.monotonic()
        rate, failed = drive(self.protocol, self.address, kind, seconds, clients)
        count = rate * (time.monotonic() - started)
        self.cpu_us.append((cpu_seconds(self.pid) - cpu_before) / max(count, 1) * 1e6)
        self.rates.append(rate)
        self.errors += failed


def measure(paths: list[str], seconds: float, rounds: int, clients: int, journal_off: bool = False,
            checkout: Path = HERE, before: tuple[tuple[str, Path], ...] = ()) -> dict[str, list[Row]]:
    """Per path: the bare receiver first, then otel-autoheal, then (if asked) otel-autoheal without the
    journal and otel-autoheal from each ``before`` (name, older checkout), measured in alternating rounds."""
    procs: list[subprocess.Popen[str]] = []
    states: list[tempfile.TemporaryDirectory[str]] = []

    def service(env: dict[str, str] | None = None, code: Path = checkout) -> dict[str, str]:
        states.append(tempfile.TemporaryDirectory())
        proc, found = launch(autoheal_cmd(states[-1].name), cwd=code, env={"PYTHONPATH": str(code), **(env or {})})
        procs.append(proc)
        found["pid"] = str(proc.pid)
        return found

    try:
        bare: dict[str, dict[str, str]] = {}
        for protocol, script in (("grpc", BARE_GRPC), ("http", BARE_UVICORN)):
            if any(PATHS[p][0] == protocol for p in paths):
                proc, found = launch([sys.executable, "-c", script])
                procs.append(proc)
                bare[protocol] = {**found, "pid": str(proc.pid)}
        ours = service()
        others = [("otel-autoheal", ours)]
        if journal_off:
            others.append(("otel-autoheal, journal off", service({"AUTOHEAL_INTAKE_JOURNAL": "false"})))
        others += [(name, service(code=code)) for name, code in before]
        rows: dict[str, list[Row]] = {}
        for path in paths:
            protocol = PATHS[path][0]
            rows[path] = [Row("bare", protocol, bare[protocol][protocol], int(bare[protocol]["pid"]))]
            rows[path] += [Row(name, protocol, found[protocol], int(found["pid"])) for name, found in others]
        for path in paths:
            kind = PATHS[path][1]
            for row in rows[path]:
                drive(row.protocol, row.address, kind, 1.0, clients)  # warm-up
        for _ in range(rounds):
            for path in paths:
                kind = PATHS[path][1]
                for row in rows[path]:
                    row.run(kind, seconds, clients)
        return rows
    finally:
        for proc in procs:
            halt(proc)
        for state in states:
            state.cleanup()


def sustained(seconds: float, clients: int, checkout: Path = HERE,
              max_held_bytes: int = 0) -> tuple[float, float, float, float, float, float]:
    """At the maximum rate: (spans/s, peak RSS MB, failing traces processed before their trace_wait,
    traces without an error forgotten before it, traces sent, estimated bytes held per trace held
    when the load stops). ``max_held_bytes``: the service's bound, if not its default."""
    env = {"PYTHONPATH": str(checkout)}
    if max_held_bytes:
        env["AUTOHEAL_MAX_HELD_BYTES"] = str(max_held_bytes)
    with tempfile.TemporaryDirectory() as state:
        proc, found = launch(autoheal_cmd(state), cwd=checkout, env=env)
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], peak_rss_mb(proc.pid))
                except OSError:
                    return
                done.wait(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            rate, _ = drive("grpc", found["grpc"], "traces", seconds, clients)
            peak[0] = max(peak[0], peak_rss_mb(proc.pid))
            evicted = metric(found["http"], "autoheal_traces_evicted_total")
            evicted += metric(found["http"], "autoheal_traces_evicted_bytes_total")
            forgotten = metric(found["http"], "autoheal_traces_forgotten_total")
            per_trace = metric(found["http"], "autoheal_held_bytes") / max(metric(found["http"], "autoheal_traces_held"), 1)
        finally:
            done.set()
            sampler.join()
            halt(proc)
    return rate, peak[0], evicted, forgotten, rate * seconds / SPANS_PER_TRACE, per_trace


def report(rows: dict[str, list[Row]], seconds: float, rounds: int, clients: int) -> None:
    print(f"fresh trace ids on every send; {clients} client processes, {seconds:g} s per receiver per round, "
          f"{rounds} alternating rounds (medians)")
    print(f"{'path':<12} {'receiver':<28} {'per s':>10} {'failed':>6} {'vs bare':>8} {'CPU µs/unit':>12}")
    for path, measured in rows.items():
        unit = PATHS[path][2]
        floor = statistics.median(measured[0].rates)
        for row in measured:
            rate = statistics.median(row.rates)
            print(f"{path:<12} {row.name:<28} {rate:>10,.0f} {row.errors:>6} {rate / floor:>8.2f} "
                  f"{statistics.median(row.cpu_us):>9.2f} {unit[:-1]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per receiver per round (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--rss-seconds", type=float, default=60.0, help="sustained run for peak RSS (0: skip)")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--held-bytes", type=int, default=0,
                        help="max_held_bytes of the sustained run (default: the service's, 64 MiB); a smaller "
                             "bound shows on a slower machine what the maximum rate of a faster one forgets")
    parser.add_argument("--journal-off", action="store_true", help="also measure intake_journal = false")
    parser.add_argument("--checkout", type=Path, default=HERE, help="otel-autoheal checkout to measure")
    parser.add_argument("--before", type=Path, action="append", default=[],
                        help="an older checkout measured in the same rounds (e.g. a git worktree); repeatable")
    args = parser.parse_args()
    rows = measure(args.paths, args.seconds, args.rounds, args.clients, args.journal_off, args.checkout.resolve(),
                   tuple((f"otel-autoheal @{path.name}", path.resolve()) for path in args.before))
    report(rows, args.seconds, args.rounds, args.clients)
    for name, code in [("otel-autoheal", args.checkout)] + [(f"otel-autoheal @{path.name}", path) for path in args.before]:
        if args.rss_seconds <= 0:
            break
        rate, peak, evicted, forgotten, traces, per_trace = sustained(args.rss_seconds, args.clients, code.resolve(),
                                                                      args.held_bytes)
        print(f"{name}: grpc-traces for {args.rss_seconds:g} s at the maximum rate ({rate:,.0f} spans/s, "
              f"~{traces:,.0f} traces): peak RSS {peak:.0f} MB; {evicted:,.0f} failing traces processed before their "
              f"trace_wait (2 s) was over, {forgotten:,.0f} traces without an error ({forgotten / max(traces, 1):.0%}) "
              f"forgotten before it (max_held_bytes); {per_trace:,.0f} estimated bytes held per trace held "
              f"({per_trace / SPANS_PER_TRACE:,.1f} per span) when the load stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
