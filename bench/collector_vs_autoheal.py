"""OTLP/gRPC ingest throughput: the otelcol-autoheal collector (batch -> nop) vs otel-autoheal itself.

    python bench/collector_vs_autoheal.py [--requests 1000] [--traces-per-request 50] [--spans-per-trace 5]

Both targets get the same pre-encoded ExportTraceServiceRequests from the same client threads, and a
target's time runs until it has acknowledged every request (UNAVAILABLE/RESOURCE_EXHAUSTED answers are
retried and counted). The collector forwards to a nop exporter, so its number is the price of the
receiving side of a collector: the baseline that otel-autoheal's own receiver is compared with. For
otel-autoheal the run also waits until its /metrics counts every span. Binaries come from
collector-config/build.sh (run on demand).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "collector"))

from stack import ManagedProcess, ensure_binaries, free_port, http_get, wait_for  # noqa: E402

_NOP_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:%(grpc)d"}
processors:
  batch: {}
exporters:
  nop: {}
extensions:
  health_check: {endpoint: "127.0.0.1:%(health)d"}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [nop]}
  telemetry:
    metrics: {level: none}
"""

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_requests(n: int, traces: int, spans: int, error_every: int) -> list[bytes]:
    """Pre-encoded requests; every ``error_every``-th trace fails with an exception event."""
    out = []
    counter = 0
    now = time.time_ns()
    for _ in range(n):
        scope_spans = trace_pb2.ScopeSpans(scope=InstrumentationScope(name="bench"))
        for _ in range(traces):
            counter += 1
            trace_id = counter.to_bytes(16, "big")
            failed = counter % error_every == 0
            for s in range(spans):
                span = trace_pb2.Span(
                    trace_id=trace_id,
                    span_id=(counter * 64 + s + 1).to_bytes(8, "big"),
                    parent_span_id=b"" if s == 0 else (counter * 64 + 1).to_bytes(8, "big"),
                    name=f"op-{s}",
                    kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=now,
                    end_time_unix_nano=now + 1_000_000,
                    attributes=[_kv("http.route", "/items/{id}"), _kv("bench.n", str(s))],
                )
                if failed and s == spans - 1:
                    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                    span.events.append(
                        trace_pb2.Span.Event(
                            name="exception",
                            time_unix_nano=now,
                            attributes=[
                                _kv("exception.type", "ValueError"),
                                _kv("exception.message", f"bad item {counter}"),
                                _kv(
                                    "exception.stacktrace",
                                    'Traceback (most recent call last):\n  File "/app/bench.py", line 7, in '
                                    f"op\n    raise ValueError('bad item {counter}')\nValueError: bad item {counter}",
                                ),
                            ],
                        )
                    )
                scope_spans.spans.append(span)
        request = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=Resource(attributes=[_kv("service.name", "bench"), _kv("autoheal.source", "cli")]),
                    scope_spans=[scope_spans],
                )
            ]
        )
        out.append(request.SerializeToString())
    return out


def send_all(endpoint: str, payloads: list[bytes], threads: int) -> tuple[float, int]:
    """Send every payload; return (seconds until all were acknowledged, retries)."""
    channel = grpc.insecure_channel(endpoint)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
    )
    grpc.channel_ready_future(channel).result(timeout=30)
    retries = [0]
    lock = threading.Lock()
    queue = list(reversed(payloads))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                payload = queue.pop()
            delay = 0.01
            while True:
                try:
                    export(payload, timeout=60)
                    break
                except grpc.RpcError as err:
                    if err.code() not in _RETRYABLE:
                        raise
                    with lock:
                        retries[0] += 1
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    channel.close()
    return elapsed, retries[0]


def _run_collector(binary: pathlib.Path, work: pathlib.Path) -> tuple[ManagedProcess, str]:
    ports = {"grpc": free_port(), "health": free_port()}
    config = work / "nop.yaml"
    config.write_text(_NOP_CONFIG % ports)
    proc = ManagedProcess("otelcol-autoheal", [str(binary), "--config", str(config)], {}, work / "otelcol.log")
    wait_for(
        lambda: http_get(f"http://127.0.0.1:{ports['health']}/")[0] == 200,
        timeout=60,
        what="collector health",
        on_timeout=proc.log_tail,
    )
    return proc, f"127.0.0.1:{ports['grpc']}"


def _run_autoheal(work: pathlib.Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http",
         "127.0.0.1:0", "--state", str(work / "state"), "--trace-wait", "1"],
        stdout=subprocess.PIPE,
        stderr=open(work / "autoheal.log", "wb"),  # noqa: SIM115 - lives as long as the process
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"grpc=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"otel-autoheal did not start: {line!r}\n{(work / 'autoheal.log').read_text()[-3000:]}")
    http = f"http://127.0.0.1:{match.group(2)}"
    wait_for(lambda: http_get(f"{http}/healthz")[0] == 200, timeout=60, what="otel-autoheal /healthz")
    return proc, f"127.0.0.1:{match.group(1)}", http


def _metric(http: str, name: str) -> float:
    with urllib.request.urlopen(f"{http}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _measure(label: str, run: Callable[[], tuple[float, int]], spans: int) -> float:
    elapsed, retries = run()
    rate = spans / elapsed
    print(f"  {label:<34} {spans:>8} spans in {elapsed:7.2f}s  {rate:>10.0f} spans/s  retries={retries}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--traces-per-request", type=int, default=50)
    parser.add_argument("--spans-per-trace", type=int, default=5)
    parser.add_argument("--error-every", type=int, default=10, help="every Nth trace fails")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    bins = ensure_binaries()
    n_warmup = max(1, args.requests // 10)
    everything = build_requests(
        args.requests + n_warmup, args.traces_per_request, args.spans_per_trace, args.error_every
    )
    warmup, payloads = everything[:n_warmup], everything[n_warmup:]
    total = args.requests * args.traces_per_request * args.spans_per_trace
    print(
        f"OTLP/gRPC ingest: {args.requests} requests x {args.traces_per_request} traces x "
        f"{args.spans_per_trace} spans, 1 trace in {args.error_every} failing, {args.threads} client threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        collector, col_endpoint = _run_collector(bins.otelcol, work)
        try:
            send_all(col_endpoint, warmup, args.threads)
            col_rate = _measure(
                "otelcol-autoheal (batch -> nop)", lambda: send_all(col_endpoint, payloads, args.threads), total
            )
        finally:
            collector.stop()

        autoheal, ah_endpoint, ah_http = _run_autoheal(work)
        try:
            send_all(ah_endpoint, warmup, args.threads)
            base = _metric(ah_http, "autoheal_spans_received_total")

            def run_autoheal() -> tuple[float, int]:
                start = time.perf_counter()
                _, retries = send_all(ah_endpoint, payloads, args.threads)
                wait_for(
                    lambda: _metric(ah_http, "autoheal_spans_received_total") - base >= total,
                    timeout=600,
                    what="otel-autoheal to count every span",
                )
                return time.perf_counter() - start, retries

            ah_rate = _measure("otel-autoheal serve (receiver)", run_autoheal, total)
        finally:
            autoheal.terminate()
            autoheal.wait(30)
    print(f"  ratio otel-autoheal / collector: {ah_rate / col_rate:.2f}x")


if __name__ == "__main__":
    main()
