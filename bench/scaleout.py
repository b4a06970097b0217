"""Scale-out: 1 instance on SQLite, 1 on PostgreSQL, 2 on PostgreSQL behind the load-balancing collector.

    AUTOHEAL_BIN_CACHE=$HOME/.cache/otel-autoheal/bin-queue python bench/scaleout.py [--rounds 5] [--traces 100000]

Every setup sits behind its own otelcol-autoheal collector built by collector-config/build.sh, with the
shipped otelcol-autoheal.yaml (redaction, tail sampling, batching, the persistent file_storage queue);
the two-instance setup adds otelcol-loadbalancing.yaml, routing every span and log record of a trace
to one instance. The load goes to the collector, not to the instances directly: several instances
need it for routing by trace id, and a single instance is deployed behind it too, so all three setups
do the same collector work and differ only in the backend and the instance count. Only the Jaeger
branch of the collector is replaced by a nop exporter (it is not what is measured).

Load per round: fresh trace ids, 5-span traces, ``--error-share`` of them failing (an exception
event on one span, over ``--bugs`` distinct stacks, so instances update the same groups
concurrently), 2 log records per trace, OTLP/gRPC from 2 client threads. A round ends when the
setup's instances have received every log record and recorded every failing trace; "spans/s" is the
spans sent divided by that time (so the collector's queue cannot flatter it). Tail sampling keeps
only the failing traces (decision wait 1 s), so the instances see those and every log record.

The burst is sent as fast as the collector takes it, so a whole round's traces can wait for their
tail-sampling decision at once: each collector gets ``OTELCOL_TAIL_NUM_TRACES`` = twice the round's
traces (at least the shipped 50,000), because beyond it tail sampling drops undecided traces, failing
ones too (collector-config/README.md). A round that makes no progress for ``--stall`` seconds fails
with what is missing and the collector's drop, failure and queue counters instead of waiting on.

Latency: each round also sends ``--probes`` failing traces with an exception type of their own, at
evenly spaced moments; each opens a group whose ``first_processed - first_seen`` is the time from
the error (stamped when sent) to its issue being recorded. The floor is the configured waits:
tail-sampling decision (1 s), batch (200 ms), ``--trace-wait`` (2 s, counted from the trace's
first data).

CPU: user + system seconds per process over each round, read from /proc (instances, the
collector, the PostgreSQL server with its backends, this client); printed per 1,000 spans, which
moves far less with the machine's load than the rates. PostgreSQL runs with its durable defaults
(fsync, synchronous_commit on); SQLite as otel-autoheal opens it (WAL, synchronous=NORMAL).

The setups run at once and take turns (alternating rounds, medians), so noise from other work on the
shared machine hits all alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ROOT = pathlib.Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "collector")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from collector_stack import Collector, ensure_binaries, free_port, http_get, start_collector, wait_for  # noqa: E402
from processes import stop_process_group  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
SPANS_PER_TRACE = 5
LOGS_PER_TRACE = 2
TRACES_PER_REQUEST = 100
ROUND_TIMEOUT_S = 900.0
#: The shipped config's ``num_traces`` (collector-config/otelcol-autoheal.yaml).
SHIPPED_NUM_TRACES = 50_000
#: Collector metrics that say where data went missing, shown when a round fails.
_COLLECTOR_COUNTERS = ("dropped", "failed", "refused", "queue_size", "tail_sampling_sampling_traces_on_memory",
                       "tail_sampling_global_count_traces_sampled")
#: Instance metrics that say where data went missing, shown when a round fails.
_INSTANCE_COUNTERS = ("rejected", "evicted", "dropped", "forgotten", "expired", "duplicates", "truncated")
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
_TICKS = os.sysconf("SC_CLK_TCK")

# The Jaeger branch of the shipped config is not part of the measurement: a nop exporter takes it.
_BENCH_OVERLAY = """
exporters:
  nop: {}
service:
  pipelines:
    traces/jaeger:
      exporters: [nop]
"""

_RESOURCE = (("service.name", "bench"), ("service.version", "1.0"), ("service.instance.id", "bench-1"))


def _stack(kind: str, where: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/orders.py", line 12, in handle\n    step(order)\n'
        f'  File "/app/bugs/bug{where}.py", line 7, in step\n    raise {kind}("bad order")\n'
        f"{kind}: bad order\n"
    )


def _fail(span: Any, kind: str, where: int, when: int) -> None:
    """Give ``span`` an error status and the exception event of ``kind`` raised at bug ``where``."""
    span.status.code = 2
    event = span.events.add(name="exception", time_unix_nano=when)
    for key, value in (("exception.type", kind), ("exception.message", "bad order"),
                       ("exception.stacktrace", _stack(kind, where))):
        event.attributes.add(key=key).value.string_value = value


def _requests(traces: int, rnd: random.Random, error_share: float, bugs: int,
              probe: tuple[str, int] | None = None) -> tuple[bytes, bytes, int]:
    """One trace export and its log export: (traces body, logs body, failing traces)."""
    now = time.time_ns()
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    logs = ExportLogsServiceRequest()
    resource_logs = logs.resource_logs.add()
    for owner in (resource_spans, resource_logs):
        for key, value in _RESOURCE:
            owner.resource.attributes.add(key=key).value.string_value = value
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    log_scope = resource_logs.scope_logs.add()
    failing = 0
    for _ in range(traces):
        trace_id = rnd.randbytes(16)
        fails = probe is not None or rnd.random() < error_share
        failing += fails
        parent = b""
        for index in range(SPANS_PER_TRACE):
            span_id = rnd.randbytes(8)
            span = scope.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=f"op{index}",
                                   kind=2 if index == 0 else 1, start_time_unix_nano=now,
                                   end_time_unix_nano=now + 1_000_000)
            span.attributes.add(key="http.route").value.string_value = "/api/orders/{id}"
            if fails and index == SPANS_PER_TRACE - 1:
                kind, where = probe or ("ValueError", rnd.randrange(bugs))
                _fail(span, kind, where, now)
            if index < LOGS_PER_TRACE:
                record = log_scope.log_records.add(time_unix_nano=now, severity_number=9, severity_text="INFO",
                                                   trace_id=trace_id, span_id=span_id)
                record.body.string_value = f"step {index} of order"
            parent = span_id
    return request.SerializeToString(), logs.SerializeToString(), failing


@dataclasses.dataclass
class RoundLoad:
    """A round's pre-built exports, where its probes go, and what the instances must end up with."""

    items: list[tuple[str, bytes] | str]  # (method, body), or a probe's exception type (built when sent)
    spans: int
    logs: int
    failing: int


def build_round(traces: int, probes: Sequence[str], seed: int, error_share: float, bugs: int) -> RoundLoad:
    rnd = random.Random(seed)
    items: list[tuple[str, bytes] | str] = []
    failing = 0
    for _ in range(traces // TRACES_PER_REQUEST):
        spans_body, logs_body, failed = _requests(TRACES_PER_REQUEST, rnd, error_share, bugs)
        items += [(LOGS_METHOD, logs_body), (TRACE_METHOD, spans_body)]  # logs first, as in a real service
        failing += failed
    step = max(1, len(items) // max(1, len(probes)))
    for n, kind in enumerate(probes):
        items.insert(min(len(items), n * step + n), kind)
    sent_traces = (traces // TRACES_PER_REQUEST) * TRACES_PER_REQUEST + len(probes)
    return RoundLoad(items, sent_traces * SPANS_PER_TRACE, sent_traces * LOGS_PER_TRACE, failing + len(probes))


def send(endpoint: str, load: RoundLoad, threads: int, seed: int) -> int:
    """Send every item (probes built and stamped now); return how many exports were retried."""
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)])
    grpc.channel_ready_future(channel).result(timeout=30)
    stubs = {m: channel.unary_unary(m, request_serializer=None, response_deserializer=None)
             for m in (TRACE_METHOD, LOGS_METHOD)}
    lock = threading.Lock()
    queue = list(reversed(load.items))
    retries = [0]

    def export(method: str, body: bytes) -> None:
        delay = 0.01
        while True:
            try:
                stubs[method](body, timeout=60)
                return
            except grpc.RpcError as err:
                if err.code() not in _RETRYABLE:
                    raise
                with lock:
                    retries[0] += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def worker(index: int) -> None:
        # A seed of its own: an int seed here once equalled a warm-up round's (10 * 1000 = 10,000), so a
        # probe reused that round's first trace id and the collector's decision cache dropped it.
        rnd = random.Random(f"probe {seed} {index}")
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            if isinstance(item, str):
                spans_body, logs_body, _ = _requests(1, rnd, 1.0, 1, probe=(item, 0))
                export(LOGS_METHOD, logs_body)
                export(TRACE_METHOD, spans_body)
            else:
                export(*item)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    channel.close()
    return retries[0]


# -- processes ------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float, float]:
    """(parent pid, own CPU seconds, CPU seconds of reaped children) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS, (int(fields[13]) + int(fields[14])) / _TICKS


def cpu_seconds(root: int) -> float:
    """CPU seconds of ``root``, its live descendants and the children it reaped (PostgreSQL backends)."""
    stats: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    if root not in stats:
        return 0.0
    total, todo, seen = stats[root][2], [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += [child for child, (parent, _, _) in stats.items() if parent == pid]
    return total


class Instance:
    """One ``otel-autoheal serve`` on fixed ports, logging to its state directory."""

    def __init__(self, name: str, work: pathlib.Path, database_url: str, trace_wait: float) -> None:
        self.name = name
        self.state = work / name
        self.state.mkdir(parents=True)
        self.grpc = f"127.0.0.1:{free_port()}"
        self.http = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
        env["AUTOHEAL_INSTANCE_ID"] = name
        argv = [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", self.grpc, "--otlp-http",
                self.http.removeprefix("http://"), "--state", str(self.state), "--trace-wait", str(trace_wait),
                "--log-level", "WARNING"]
        if database_url:
            argv += ["--database-url", database_url]
        self._log = open(self.state / "service.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._log, env=env, cwd=ROOT,
                                     start_new_session=True)
        wait_for(self._healthy, timeout=60, what=f"{name} /healthz", on_timeout=self.log_tail)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        return bool(http_get(f"{self.http}/healthz")[0] == 200)

    def log_tail(self) -> str:
        return (self.state / "service.log").read_text(errors="replace")[-3000:]

    def metric(self, *names: str) -> float:
        status, body = http_get(f"{self.http}/metrics")
        if status != 200:
            raise RuntimeError(f"{self.name} /metrics answered {status}")
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
                   if line.split("{", 1)[0].split(" ", 1)[0] in names)

    def stop(self) -> None:
        stop_process_group(self.proc, grace=30)
        self._log.close()


@dataclasses.dataclass
class Setup:
    """A deployment under test and what its rounds measured."""

    name: str
    instances: list[Instance]
    collector: Collector
    postgres: PostgresServer | None
    database: str  # the SQLite file or the PostgreSQL URL, to read the probes' groups
    rates: list[float] = dataclasses.field(default_factory=list)
    ack_rates: list[float] = dataclasses.field(default_factory=list)
    retries: int = 0
    cpu: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # role -> CPU s per 1k spans, per round

    def processes(self) -> dict[str, int]:
        roles = {f"instance {i.name}": i.proc.pid for i in self.instances}
        roles["collector"] = self.collector.process.proc.pid
        if self.postgres is not None:
            roles["postgres"] = int((self.postgres.data / "postmaster.pid").read_text().split()[0])
        return roles

    def progress(self) -> tuple[float, float]:
        """(failing traces recorded, log records received) over the instances."""
        return (sum(i.metric("autoheal_occurrences_total", "autoheal_duplicates_total") for i in self.instances),
                sum(i.metric("autoheal_logs_received_total") for i in self.instances))


def collector_counters(collector: Collector) -> str:
    """The collector's non-zero counters that say where data was dropped, refused or queued."""
    lines = [line for line in collector.metrics_text().splitlines()
             if not line.startswith("#") and any(name in line.split("{", 1)[0] for name in _COLLECTOR_COUNTERS)
             and float(line.rsplit(" ", 1)[1]) != 0]
    return "\n".join(lines) or "(no non-zero drop, failure or queue counters)"


def instance_counters(instance: Instance) -> str:
    """An instance's non-zero counters of data it refused, evicted or dropped."""
    status, body = http_get(f"{instance.http}/metrics")
    lines = [line for line in body.decode().splitlines() if status == 200 and not line.startswith("#")
             and any(word in line.split("{", 1)[0] for word in _INSTANCE_COUNTERS)
             and float(line.rsplit(" ", 1)[1]) != 0]
    return "\n".join(f"{instance.name}: {line}" for line in lines) or f"{instance.name}: (none non-zero)"


def _wait_for_round(setup: Setup, load: RoundLoad, recorded0: float, logs0: float, stall: float) -> None:
    """Wait until the instances have every failing trace and log record of the round; fail with what is
    missing after ``stall`` seconds without progress (or ROUND_TIMEOUT_S in all)."""
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    last, moved = (-1.0, -1.0), time.monotonic()
    while True:
        setup.collector.process.check_alive()
        recorded, logs = setup.progress()
        if recorded - recorded0 >= load.failing and logs - logs0 >= load.logs:
            return
        now = time.monotonic()
        if (recorded, logs) != last:
            last, moved = (recorded, logs), now
        elif now - moved >= stall or now >= deadline:
            raise SystemExit(
                f"{setup.name}: round stalled ({now - moved:.0f} s without progress): "
                f"{recorded - recorded0:,.0f} of {load.failing:,} failing traces recorded, "
                f"{logs - logs0:,.0f} of {load.logs:,} log records received; collector counters:\n"
                f"{collector_counters(setup.collector)}\ninstance counters:\n"
                + "\n".join(instance_counters(i) for i in setup.instances)
                + f"\ncollector log:\n{setup.collector.process.log_tail()}")
        time.sleep(0.2)


def run_round(setup: Setup, load: RoundLoad, threads: int, seed: int, stall: float) -> None:
    recorded0, logs0 = setup.progress()
    roles = setup.processes()
    cpu0 = {role: cpu_seconds(pid) for role, pid in roles.items()}
    client0 = time.process_time()
    start = time.monotonic()
    setup.retries += send(setup.collector.grpc_endpoint, load, threads, seed)
    acked = time.monotonic()

    _wait_for_round(setup, load, recorded0, logs0, stall)
    elapsed = time.monotonic() - start
    per_1k = load.spans / 1000
    for role, pid in roles.items():
        setup.cpu.setdefault(role, []).append((cpu_seconds(pid) - cpu0[role]) / per_1k)
    setup.cpu.setdefault("client (this process)", []).append((time.process_time() - client0) / per_1k)
    setup.rates.append(load.spans / elapsed)
    setup.ack_rates.append(load.spans / (acked - start))


def probe_latencies(setup: Setup) -> list[float]:
    """Seconds from each probe error to its group being recorded."""
    from otel_autoheal.state import SQLiteStore
    from otel_autoheal.state.postgres import PostgresStore

    store = PostgresStore(setup.database) if setup.postgres is not None else SQLiteStore(setup.database)
    try:
        return sorted(g.first_processed - g.first_seen for g in store.groups() if g.exception_type.startswith("Probe"))
    finally:
        store.close()


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else float("nan")


@contextmanager
def setups(work: pathlib.Path, args: argparse.Namespace) -> Iterator[list[Setup]]:
    """Start PostgreSQL, the instances and one collector per setup; stop all of them afterwards."""
    binaries = ensure_binaries()
    overlay = work / "bench-overlay.yaml"
    overlay.write_text(_BENCH_OVERLAY)
    collector_env = {"OTELCOL_TAIL_DECISION_WAIT": "1s", "OTELCOL_LOG_LEVEL": "warn",
                     "OTELCOL_TAIL_NUM_TRACES": str(max(SHIPPED_NUM_TRACES, 2 * (args.traces + args.probes)))}
    with ExitStack() as stack:
        postgres = PostgresServer(fsync=True)
        stack.callback(postgres.stop)

        def instance(name: str, database_url: str) -> Instance:
            started = Instance(name, work, database_url, args.trace_wait)
            stack.callback(started.stop)
            return started

        def collector(backends: list[Instance]) -> Collector:
            configs: tuple[str, ...] = ("otelcol-autoheal.yaml", str(overlay))
            env = dict(collector_env)
            if len(backends) > 1:
                configs = ("otelcol-autoheal.yaml", "otelcol-loadbalancing.yaml", str(overlay))
                env["AUTOHEAL_BACKENDS"] = "[" + ", ".join(b.grpc for b in backends) + "]"
            started = start_collector(binaries.otelcol, work, autoheal_endpoint=backends[0].grpc,
                                      jaeger_endpoint="127.0.0.1:1", configs=configs, env=env)
            stack.callback(started.stop)
            return started

        single = instance("sqlite-1", "")
        one_pg_url, two_pg_url = postgres.new_database(), postgres.new_database()
        one_pg = instance("pg-1", one_pg_url)
        pair = [instance("pg2-a", two_pg_url), instance("pg2-b", two_pg_url)]
        yield [
            Setup("1 instance, SQLite", [single], collector([single]), None,
                  str(single.state / "autoheal.sqlite3")),
            Setup("1 instance, PostgreSQL", [one_pg], collector([one_pg]), postgres, one_pg_url),
            Setup("2 instances, PostgreSQL, load-balancing", pair, collector(pair), postgres, two_pg_url),
        ]


def report(all_setups: list[Setup], args: argparse.Namespace, latencies: dict[str, list[float]]) -> None:
    base = statistics.median(all_setups[0].rates)
    one_pg = statistics.median(all_setups[1].rates)
    print(f"\nscale-out, {args.rounds} alternating rounds of {args.traces:,} traces (x{SPANS_PER_TRACE} spans, "
          f"{LOGS_PER_TRACE} logs each, {args.error_share:.0%} failing over {args.bugs} stacks) + {args.probes} "
          f"probes, OTLP/gRPC to the collector from {args.threads} threads; medians")
    print(f"{'setup':<42} {'spans/s':>9} {'vs SQLite':>9} {'acked/s':>9} {'p50 s':>6} {'p95 s':>6} {'probes':>6} "
          f"{'retries':>7}")
    for setup in all_setups:
        rate = statistics.median(setup.rates)
        lat = latencies[setup.name]
        print(f"{setup.name:<42} {rate:>9,.0f} {rate / base:>9.2f} {statistics.median(setup.ack_rates):>9,.0f} "
              f"{_percentile(lat, 0.5):>6.2f} {_percentile(lat, 0.95):>6.2f} {len(lat):>6} {setup.retries:>7}")
    print(f"scaling, 2 instances / 1 instance on PostgreSQL: {statistics.median(all_setups[2].rates) / one_pg:.2f}x "
          f"(on {os.cpu_count()} cores shared by every process below)")
    print("\nCPU ms per 1,000 spans sent (median over rounds)")
    for setup in all_setups:
        cells = {role: statistics.median(values) * 1000 for role, values in setup.cpu.items()}
        total = sum(v for role, v in cells.items() if not role.startswith("client"))
        text = ", ".join(f"{role} {value:.2f}" for role, value in cells.items())
        print(f"  {setup.name:<42} {text}; total without client {total:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per setup (default 5)")
    parser.add_argument("--traces", type=int, default=100_000, help="traces per round (default 100,000)")
    parser.add_argument("--error-share", type=float, default=0.05, help="share of failing traces (default 0.05)")
    parser.add_argument("--bugs", type=int, default=20, help="distinct failing stacks (default 20)")
    parser.add_argument("--probes", type=int, default=10, help="latency probes per round (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="client threads (default 2)")
    parser.add_argument("--trace-wait", type=float, default=2.0, help="otel-autoheal --trace-wait (default 2)")
    parser.add_argument("--stall", type=float, default=120.0,
                        help="fail a round after this many seconds without progress (default 120)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="autoheal-scaleout-") as tmp, setups(pathlib.Path(tmp), args) as started:
        # A warm-up round each (imports, connections, first groups), not counted.
        for n, setup in enumerate(started):
            run_round(setup, build_round(500, [], 10_000 + n, args.error_share, args.bugs), args.threads, n,
                      args.stall)
            setup.rates.clear()
            setup.ack_rates.clear()
            setup.cpu.clear()
        for round_no in range(args.rounds):
            turn = round_no % len(started)  # each setup goes first in some round
            for n, setup in [*enumerate(started)][turn:] + [*enumerate(started)][:turn]:
                probes = [f"Probe{round_no}x{n}x{i}Error" for i in range(args.probes)]
                load = build_round(args.traces, probes, round_no * 10 + n, args.error_share, args.bugs)
                run_round(setup, load, args.threads, round_no * 10 + n, args.stall)
                print(f"round {round_no + 1} {setup.name}: {setup.rates[-1]:,.0f} spans/s", flush=True)
        latencies = {setup.name: probe_latencies(setup) for setup in started}
        report(started, args, latencies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
