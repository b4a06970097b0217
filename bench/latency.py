"""Error → issue latency and memory of otel-autoheal at half its maximum rate, with trace ids new on every send.

The load is ``bench/ingest.py``'s gRPC trace path (imported from it: exports of 100 traces of 6
spans, 1% of the traces failing with an exception and sending 5 log lines in a logs export, fresh
trace ids on every send), in two runs against a fresh service each:

1. At the maximum rate for ``--seconds`` (``ingest.sustained``): the rate, peak RSS, and how many
   traces were processed before their ``trace_wait`` was over. ``--rate`` skips this run.
2. At half that rate for ``--soak-minutes``, paced: each client process sends on a token bucket
   (a burst of at most ``BURST`` sends when it fell behind). For every failing trace the client
   notes the wall time at which the request completing its data (its logs export, the last one of
   the send) went out; the service stamps each occurrence it records in the store's
   ``occurrence_keys`` table (``seen``, the wall time of ``record``; the key carries the trace id).
   Read once at the end, read-only, so the measurement costs the service nothing during the run.
   Reported: record time − send time − ``trace_wait`` (p50/p95/p99/max; negative means processed
   before its ``trace_wait`` was over), the assembler's early-processing counters from
   ``/metrics``, and RSS sampled every second from /proc: peak, and its slope after the first
   minute (least squares, MB per minute).

    python bench/latency.py [--seconds 60] [--soak-minutes 10] [--rate SPANS_PER_S] [--trace-wait 2] [--clients 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import ingest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

#: Sends a client may make back to back after falling behind its pace.
BURST = 3
#: The service's state file in its state directory.
STATE_FILE = "autoheal.sqlite3"
#: RSS samples before this many seconds of the paced run are warm-up, left out of the slope.
WARM_UP_SECONDS = 60.0


def _failing_suffixes(send: ingest.Send) -> list[bytes]:
    """The last 8 bytes of the trace ids of the send's failing traces (the first 8 are its placeholder)."""
    traces = ExportTraceServiceRequest.FromString(send.requests[0][1])
    found = {span.trace_id[8:] for rs in traces.resource_spans for scope in rs.scope_spans for span in scope.spans
             if span.events}
    return sorted(found)


def _paced_client(endpoint: str, seconds: float, sends_per_second: float, seed: int,
                  result: mp.Queue) -> None:  # type: ignore[type-arg]
    """Send ``ingest``'s trace load on a token bucket; put (spans, failed sends, sends, [(trace id, sent, acked)])."""
    sends = ingest.build_sends("traces", seed)
    failing = [_failing_suffixes(send) for send in sends]
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)])
    stubs = {m: channel.unary_unary(m, request_serializer=None, response_deserializer=None)
             for m in (ingest.TRACE_METHOD, ingest.LOGS_METHOD)}
    interval = 1.0 / sends_per_second
    spans = errors = i = 0
    traces: list[tuple[str, float, float]] = []
    start = time.monotonic()
    due, deadline = start, start + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now < due:
            time.sleep(due - now)
        due = max(due + interval, time.monotonic() - BURST * interval)
        index = i % len(sends)
        send = sends[index]
        i += 1
        new = os.urandom(8)
        sent = 0.0
        try:
            for method, body in send.requests:
                body = body.replace(send.placeholder, new)
                sent = time.time()
                stubs[method](body, timeout=30)
        except grpc.RpcError:
            errors += 1
            continue
        acked = time.time()
        spans += send.count
        traces += [((new + suffix).hex(), sent, acked) for suffix in failing[index]]
    channel.close()
    result.put((spans / (time.monotonic() - start), errors, i, traces))


def paced(endpoint: str, seconds: float, spans_per_second: float, clients: int
          ) -> tuple[float, int, list[tuple[str, float, float]]]:
    """Load the service at ``spans_per_second`` from ``clients`` processes; returns (spans/s reached, failed sends,
    failing traces as (trace id, wall time their last request went out, wall time it was acknowledged))."""
    per_client = spans_per_second / (ingest.TRACES_PER_REQUEST * ingest.SPANS_PER_TRACE) / clients
    queue: mp.Queue[tuple[float, int, int, list[tuple[str, float, float]]]] = mp.Queue()
    procs = [mp.Process(target=_paced_client, args=(endpoint, seconds, per_client, seed, queue))
             for seed in range(clients)]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return (sum(r[0] for r in results), sum(r[1] for r in results),
            [trace for r in results for trace in r[3]])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    return statistics.linear_regression([t for t, _ in samples], [mb for _, mb in samples]).slope * 60


def recorded(state: Path, trace_ids: set[str]) -> dict[str, float]:
    """Trace id → wall time its first occurrence was recorded, from the state file (read-only)."""
    connection = sqlite3.connect(f"file:{state / STATE_FILE}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("SELECT key, seen FROM occurrence_keys").fetchall()
    finally:
        connection.close()
    times: dict[str, float] = {}
    for key, seen in rows:
        for part in str(key).split(":"):
            if part in trace_ids:
                times[part] = min(float(seen), times.get(part, float(seen)))
                break
    return times


@dataclass
class Soak:
    rate: float
    errors: int
    seconds: float
    trace_wait: float
    #: Trace id → (sent, acked, recorded or None).
    traces: dict[str, tuple[float, float, float | None]] = field(default_factory=dict)
    rss: list[tuple[float, float]] = field(default_factory=list)
    peak: float = 0.0
    #: CPU time (user + system) of the service per span during the paced run, µs.
    cpu_us: float = 0.0
    evicted: float = 0.0
    forgotten: float = 0.0
    load: str = ""


def soak(rate: float, minutes: float, trace_wait: float, clients: int, checkout: Path) -> Soak:
    """Run the service at ``rate`` spans/s for ``minutes``, sampling its RSS every second; then collect latencies."""
    with tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        proc, found = ingest.launch(ingest.autoheal_cmd(state_dir, trace_wait), cwd=checkout,
                                    env={"PYTHONPATH": str(checkout)})
        samples: list[tuple[float, float]] = []
        done = threading.Event()
        start = time.monotonic()

        def sample() -> None:
            while not done.wait(1.0 - (time.monotonic() - start) % 1.0):
                try:
                    samples.append((time.monotonic() - start, rss_mb(proc.pid)))
                except OSError:
                    return

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            cpu = ingest.cpu_seconds(proc.pid)
            reached, errors, sent = paced(found["grpc"], minutes * 60, rate, clients)
            cpu = ingest.cpu_seconds(proc.pid) - cpu
            ids = {trace_id for trace_id, _, _ in sent}
            # Wait until every failing trace is recorded, or the count stops growing for a while.
            times: dict[str, float] = {}
            still = time.monotonic() + trace_wait + 30
            while time.monotonic() < still and len(times) < len(ids):
                before = len(times)
                time.sleep(1.0)
                times = recorded(state, ids)
                if len(times) > before:
                    still = time.monotonic() + trace_wait + 30
            evicted = (ingest.metric(found["http"], "autoheal_traces_evicted_total")
                       + ingest.metric(found["http"], "autoheal_traces_evicted_bytes_total"))
            forgotten = ingest.metric(found["http"], "autoheal_traces_forgotten_total")
            peak = ingest.peak_rss_mb(proc.pid)
        finally:
            done.set()
            sampler.join()
            ingest.halt(proc)
    result = Soak(reached, errors, minutes * 60, trace_wait, rss=samples, peak=peak, evicted=evicted,
                  forgotten=forgotten, cpu_us=cpu / max(reached * minutes * 60, 1) * 1e6)
    result.traces = {trace_id: (at, acked, times.get(trace_id)) for trace_id, at, acked in sent}
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(result: Soak, target: float) -> None:
    wait = result.trace_wait
    delays = [(done - sent - wait) * 1000 for sent, _, done in result.traces.values() if done is not None]
    early_sent = sum(1 for sent, _, done in result.traces.values() if done is not None and done < sent + wait)
    round_trips = [(acked - sent) * 1000 for sent, acked, _ in result.traces.values()]
    missing = sum(1 for *_, done in result.traces.values() if done is None)
    print(f"paced run: {result.seconds / 60:g} min at {target:,.0f} spans/s asked, {result.rate:,.0f} reached, "
          f"{result.errors} failed sends; service CPU {result.cpu_us:.2f} µs/span; trace_wait {wait:g} s; load average {result.load}")
    print(f"failing traces: {len(result.traces):,} sent, {len(delays):,} recorded, {missing:,} not recorded")
    if delays:
        print("record time - last send - trace_wait (ms): "
              f"p50 {percentile(delays, 0.50):.0f}, p95 {percentile(delays, 0.95):.0f}, "
              f"p99 {percentile(delays, 0.99):.0f}, max {max(delays):.0f}, min {min(delays):.0f}")
    if round_trips:
        print(f"last request's round trip (ms): p50 {percentile(round_trips, 0.50):.0f}, "
              f"p95 {percentile(round_trips, 0.95):.0f}, max {max(round_trips):.0f}")
    print(f"recorded before trace_wait was over (counted from the last send): {early_sent:,}; /metrics: "
          f"{result.evicted:,.0f} failing traces processed early (max_traces, max_held_bytes), "
          f"{result.forgotten:,.0f} traces without an error forgotten early")
    after = [(t, mb) for t, mb in result.rss if t >= WARM_UP_SECONDS]
    if after:
        print(f"RSS: peak {result.peak:.0f} MB (VmHWM), after the first minute {min(mb for _, mb in after):.0f}–"
              f"{max(mb for _, mb in after):.0f} MB, slope {slope_per_minute(after):+.2f} MB/min "
              f"({len(after)} samples, least squares)")
    else:
        print(f"RSS: peak {result.peak:.0f} MB (VmHWM); run shorter than the {WARM_UP_SECONDS:g} s warm-up, no slope")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="seconds at the maximum rate: the rate, peak RSS (default 60)")
    parser.add_argument("--soak-minutes", type=float, default=10.0, help="minutes at half of it (default 10)")
    parser.add_argument("--rate", type=float, help="maximum rate in spans/s: skips the run at the maximum rate")
    parser.add_argument("--trace-wait", type=float, default=2.0, help="the service's trace_wait in s (default 2)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--checkout", type=Path, default=ingest.HERE, help="otel-autoheal checkout to measure")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    print(f"load average at start: {load_average()}", flush=True)
    rate = args.rate
    if rate is None:
        rate, peak, evicted, forgotten, traces, per_trace = ingest.sustained(args.seconds, args.clients, checkout)
        print(f"{args.seconds:g} s at the maximum rate: {rate:,.0f} spans/s (~{traces:,.0f} traces), peak RSS "
              f"{peak:.0f} MB, {evicted:,.0f} failing traces processed before their trace_wait (2 s), "
              f"{forgotten:,.0f} traces without an error forgotten before it, {per_trace:,.0f} estimated bytes "
              f"held per trace; load average {load_average()}", flush=True)
    result = soak(rate / 2, args.soak_minutes, args.trace_wait, args.clients, checkout)
    result.load = load_average()
    report(result, rate / 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
