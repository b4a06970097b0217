"""Ingest throughput of otel-autoheal vs a bare grpcio OTLP receiver that only parses, side by side.

Load: OTLP/gRPC trace exports of 5-span traces, 1% of traces carry an `exception` span event and
5 log records (sent as log exports). Both servers run as subprocesses on 127.0.0.1 and receive
the same pre-built requests from the same client; the machine is shared and noisy, so compare
the ratio, not the absolute numbers. Then peak RSS of otel-autoheal over a sustained run.

    python bench/ingest.py [--seconds 10] [--rss-seconds 60] [--clients 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
TRACES_PER_REQUEST = 100
SPANS_PER_TRACE = 5

BARE_RECEIVER = textwrap.dedent("""
    import sys, time
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


def build_requests(batches: int, seed: int) -> list[tuple[str, bytes, int]]:
    """Pre-serialised (method, body, span count) tuples; 1% of traces error with 5 logs."""
    out: list[tuple[str, bytes, int]] = []
    rnd = __import__("random").Random(seed)
    now = time.time_ns()
    for _ in range(batches):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        for key, value in (("service.name", "bench"), ("service.version", "1.0"), ("service.instance.id", "b-1")):
            kv = rs.resource.attributes.add(key=key)
            kv.value.string_value = value
        scope = rs.scope_spans.add()
        logs = ExportLogsServiceRequest()
        log_scope = logs.resource_logs.add().scope_logs.add()
        for _t in range(TRACES_PER_REQUEST):
            trace_id = rnd.randbytes(16)
            erroring = rnd.random() < 0.01
            parent = b""
            for index in range(SPANS_PER_TRACE):
                span_id = rnd.randbytes(8)
                span = scope.spans.add(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name=f"op{index}",
                    kind=2,
                    start_time_unix_nano=now,
                    end_time_unix_nano=now + 1000,
                )
                for key, value in (("http.route", "/api/items/{id}"), ("http.request.method", "GET")):
                    kv = span.attributes.add(key=key)
                    kv.value.string_value = value
                if erroring and index == SPANS_PER_TRACE - 1:
                    span.status.code = 2
                    event = span.events.add(name="exception", time_unix_nano=now + 500)
                    for key, value in (
                        ("exception.type", "ValueError"),
                        ("exception.message", f"bad item {rnd.randint(1, 10**6)}"),
                        (
                            "exception.stacktrace",
                            "Traceback (most recent call last):\n"
                            '  File "/app/items.py", line 10, in get_item\n    parse(x)\n'
                            "ValueError: bad item\n",
                        ),
                    ):
                        kv = event.attributes.add(key=key)
                        kv.value.string_value = value
                    for n in range(5):
                        record = log_scope.log_records.add(
                            time_unix_nano=now - 1000 + n,
                            severity_number=9,
                            severity_text="INFO",
                            trace_id=trace_id,
                            span_id=span_id,
                        )
                        record.body.string_value = f"step {n} of request"
                parent = span_id
        out.append((TRACE_METHOD, request.SerializeToString(), TRACES_PER_REQUEST * SPANS_PER_TRACE))
        if log_scope.log_records:
            out.append((LOGS_METHOD, logs.SerializeToString(), 0))
    return out


def _client(endpoint: str, seconds: float, seed: int, result: mp.Queue[tuple[int, int]]) -> None:
    requests = build_requests(40, seed)
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)])
    stubs = {
        m: channel.unary_unary(m, request_serializer=None, response_deserializer=None)
        for m in (TRACE_METHOD, LOGS_METHOD)
    }
    spans = errors = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        method, body, count = requests[i % len(requests)]
        i += 1
        try:
            stubs[method](body, timeout=30)
            spans += count
        except grpc.RpcError:
            errors += 1
    channel.close()
    result.put((spans, errors))


def drive(endpoint: str, seconds: float, clients: int) -> tuple[float, int]:
    queue: mp.Queue[tuple[int, int]] = mp.Queue()
    procs = [mp.Process(target=_client, args=(endpoint, seconds, seed, queue)) for seed in range(clients)]
    start = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    return sum(r[0] for r in results) / elapsed, sum(r[1] for r in results)


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"grpc=(127\.0\.0\.1:\d+)", line)
    if not match:
        raise SystemExit(f"server did not start: {line!r}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def autoheal_cmd(state: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "otel_autoheal",
        "serve",
        "--otlp-grpc",
        "127.0.0.1:0",
        "--otlp-http",
        "127.0.0.1:0",
        "--state",
        state,
        "--trace-wait",
        "2",
        "--log-level",
        "WARNING",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="throughput time per server (default 15)")
    parser.add_argument("--rss-seconds", type=float, default=60.0, help="sustained run for peak RSS (default 60)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per server (default 5)")
    args = parser.parse_args()

    # Both servers run at once and take turns, so that noise from other work on the machine
    # hits both alike; the medians of the rounds are compared.
    bare, bare_endpoint = start([sys.executable, "-c", BARE_RECEIVER])
    state_dir = tempfile.TemporaryDirectory()
    nojournal_dir = tempfile.TemporaryDirectory()
    ours, ours_endpoint = start(autoheal_cmd(state_dir.name))
    fast, fast_endpoint = start(autoheal_cmd(nojournal_dir.name), {"AUTOHEAL_INTAKE_JOURNAL": "false"})
    endpoints = {"bare": bare_endpoint, "ours": ours_endpoint, "fast": fast_endpoint}
    rates: dict[str, list[float]] = {name: [] for name in endpoints}
    errors: dict[str, int] = dict.fromkeys(endpoints, 0)
    try:
        for endpoint in endpoints.values():
            drive(endpoint, 1, args.clients)  # warm-up
        per_round = args.seconds / args.rounds
        for _ in range(args.rounds):
            for name, endpoint in endpoints.items():
                rate, failed = drive(endpoint, per_round, args.clients)
                rates[name].append(rate)
                errors[name] += failed
    finally:
        for proc in (bare, ours, fast):
            stop(proc)
        state_dir.cleanup()
        nojournal_dir.cleanup()
    bare_rate, ours_rate, fast_rate = (statistics.median(rates[n]) for n in ("bare", "ours", "fast"))
    bare_errors, ours_errors, fast_errors = errors["bare"], errors["ours"], errors["fast"]
    with tempfile.TemporaryDirectory() as state:
        ours, ours_endpoint = start(autoheal_cmd(state))
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], peak_rss_mb(ours.pid))
                except OSError:
                    return
                done.wait(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            sustained_rate, _ = drive(ours_endpoint, args.rss_seconds, args.clients)
            peak[0] = max(peak[0], peak_rss_mb(ours.pid))
        finally:
            done.set()
            sampler.join()
            stop(ours)

    print(
        f"OTLP/gRPC ingest, {SPANS_PER_TRACE}-span traces, 1% with an exception + 5 logs, "
        f"{args.clients} client processes, {args.seconds:g}s per server in {args.rounds} alternating rounds (medians)"
    )
    print(f"{'receiver':<34} {'spans/s':>10} {'errors':>7} {'vs bare':>8}")
    print(f"{'bare grpcio receiver (parse only)':<34} {bare_rate:>10,.0f} {bare_errors:>7} {'1.00':>8}")
    print(f"{'otel-autoheal serve':<34} {ours_rate:>10,.0f} {ours_errors:>7} {ours_rate / bare_rate:>8.2f}")
    print(f"{'otel-autoheal, intake_journal off':<34} {fast_rate:>10,.0f} {fast_errors:>7} {fast_rate / bare_rate:>8.2f}")
    print(
        f"peak RSS of otel-autoheal over {args.rss_seconds:g}s at {sustained_rate:,.0f} spans/s: {peak[0]:.0f} MB "
        f"(target <= 300 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
