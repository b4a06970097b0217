"""Cost to the host application of the in-process exporters vs the official OTLP exporters, in one process.

The host: the official ``opentelemetry-sdk`` ``TracerProvider`` + ``BatchSpanProcessor`` (and
``LoggerProvider`` + ``BatchLogRecordProcessor`` fed by the ``logging`` bridge), with ``--threads``
application threads producing realistic telemetry:

- ``spans``: requests of 6 spans (a server span, middleware, a handler, two database calls and an
  outgoing HTTP call, with the attributes instrumentations set, as in ``bench/ingest.py``); 1% of
  them raise in the handler, recorded as an ``exception`` event with ERROR status.
- ``logs``: 4 log lines per request inside its trace (``logger.info`` with ``extra`` fields through
  the OTel ``logging`` handler); 0.5% of the records are ``logger.exception`` with a traceback.

Exporters compared, each behind its own batch processor, one at a time:

- ``none``: a batch processor whose exporter drops every batch (what the SDK itself costs);
- ``otlp-http``/``otlp-grpc``: the official OTLP exporters, sending to a bare receiver in another
  process that only parses (``BARE_UVICORN`` / ``BARE_GRPC`` of ``bench/ingest.py``);
- ``autoheal``: ``AutohealSpanExporter``/``AutohealLogExporter`` with a fresh state directory (the
  whole pipeline runs in this process: the exporter's worker, the assembler, the pipeline for
  every failing trace, SQLite).

Each configuration gets a fresh provider per round; configurations alternate in rounds. A round
measures the process's CPU time (user + system of all its threads: the exporters' own threads
work in the host) and the wall time from the first span to the provider's ``shutdown()``
returning (everything exported, flushed and processed). Reported: medians per span or record and
``(exporter - none) / (official - none)`` of CPU, the issue's target being ≤ 1.2; for ours also
how many traces its assembler let go before ``trace_wait`` was over (``max_traces``: a failing
one among them misses what arrives for it later). What the engine still holds when a round ends is let
go by the provider's shutdown, inside the measured time.

    python bench/exporter_cost.py [--rounds 5] [--requests 10000] [--threads 2] [--signals spans logs]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from ingest import BARE_GRPC, BARE_UVICORN, halt, launch  # noqa: E402

SPANS_PER_REQUEST = 6
LOGS_PER_REQUEST = 4
#: One request in this many fails (1%): exception recorded on the handler span, ERROR status.
FAILING_EVERY = 100
#: One log record in this many is ``logger.exception`` (0.5%).
EXCEPTION_LOG_EVERY = 200
#: Large enough that the batch processors never drop: every configuration exports every span.
QUEUE_SIZE = 1 << 17

RESOURCE = Resource.create({
    "service.name": "checkout", "service.version": "2.14.1", "service.instance.id": "checkout-7f9c-2",
    "deployment.environment.name": "production", "host.name": "ip-10-0-3-17",
})


class Counting:
    """Counts what reaches the exporter it wraps (the same thin layer for every configuration)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.exported = 0

    def export(self, batch: Sequence[Any]) -> Any:
        self.exported += len(batch)
        return self.inner.export(batch)

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        self.inner.shutdown(*args, **kwargs)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


class CountingSpans(Counting, SpanExporter):
    pass


class CountingLogs(Counting, LogRecordExporter):
    pass


class NullSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class NullLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- load ---------------------------------------------------------------------------------------
class PricingError(TypeError):
    pass


def _place_order(tracer: trace.Tracer, failing: bool) -> None:
    with tracer.start_as_current_span("place_order", attributes={
            "code.function": "place_order", "code.filepath": "/app/checkout/handlers.py"}):
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.namespace": "shop",
                "db.query.text": "SELECT id, total FROM orders WHERE customer_id = $1"}):
            pass
        with tracer.start_as_current_span("INSERT order_items", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.namespace": "shop",
                "db.query.text": "INSERT INTO order_items (order_id, sku) VALUES ($1, $2)"}):
            pass
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "GET", "url.full": "http://pricing:8080/v1/prices"}) as call:
            call.set_attribute("http.response.status_code", 200)
        if failing:
            raise PricingError("unsupported operand type(s) for +: 'int' and 'NoneType'")


def request_spans(tracer: trace.Tracer, failing: bool) -> None:
    """One server request of 6 spans; a failing one records the exception and ends with ERROR/500."""
    with tracer.start_as_current_span("POST /api/orders", kind=SpanKind.SERVER, attributes={
            "http.request.method": "POST", "http.route": "/api/orders", "url.path": "/api/orders",
            "url.scheme": "https", "server.address": "shop.example.com", "client.address": "10.0.7.12",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)"}) as server:
        try:
            with tracer.start_as_current_span("auth_middleware", attributes={"code.function": "authenticate"}):
                _place_order(tracer, failing)
            server.set_attribute("http.response.status_code", 200)
        except PricingError:  # the framework turns it into a 500
            server.set_attribute("http.response.status_code", 500)
            server.set_status(Status(StatusCode.ERROR))


_LINES = ("GET /api/items/%d 200 in %d ms", "cache miss for key product:%d (%d ms)",
          "user %d added item to cart in %d ms", "payment authorised for order %d after %d ms")


def request_logs(logger: logging.Logger, rnd: random.Random, numbers: list[int]) -> None:
    """One request's 4 log lines in its trace; every ``EXCEPTION_LOG_EVERY``-th record is an exception."""
    context = SpanContext(rnd.getrandbits(128) | 1, rnd.getrandbits(64) | 1, is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with trace.use_span(NonRecordingSpan(context)):
        for line in _LINES:
            numbers[0] += 1
            if numbers[0] % EXCEPTION_LOG_EVERY == 0:
                try:
                    raise PricingError("unsupported operand type(s) for +: 'int' and 'NoneType'")
                except PricingError:
                    logger.exception("order placement failed", extra={"order.id": rnd.randint(1, 10**6)})
            else:
                logger.info(line, rnd.randint(1, 10**6), rnd.randint(1, 900),
                            extra={"http.route": "/api/items/{id}", "thread.name": "worker-3"})


def produce(signal: str, requests: int, threads: int, provider: Any) -> None:
    """``requests`` requests' worth of spans or logs from ``threads`` application threads at once."""
    per_thread = requests // threads
    if signal == "spans":
        tracer = provider.get_tracer("opentelemetry.instrumentation.flask")

        def work(n: int) -> None:
            for i in range(per_thread):
                request_spans(tracer, (i + n * 7) % FAILING_EVERY == 0)
    else:
        logger = logging.getLogger("checkout.handlers")

        def work(n: int) -> None:
            rnd, numbers = random.Random(n), [n * 37]
            for _ in range(per_thread):
                request_logs(logger, rnd, numbers)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


# -- exporters ------------------------------------------------------------------------------------
def official(signal: str, protocol: str, address: str) -> Callable[[], Any]:
    if signal == "spans" and protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
        return lambda: HttpSpans(endpoint=f"http://{address}/v1/traces")
    if signal == "spans":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
        return lambda: GrpcSpans(endpoint=address, insecure=True)
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
        return lambda: HttpLogs(endpoint=f"http://{address}/v1/logs")
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
    return lambda: GrpcLogs(endpoint=address, insecure=True)


def autoheal(signal: str, state: str) -> Any:
    from otel_autoheal.exporters import AutohealLogExporter, AutohealSpanExporter
    kind = AutohealSpanExporter if signal == "spans" else AutohealLogExporter
    return kind(state_dir=state, queue_size=QUEUE_SIZE)


@dataclass
class Config:
    name: str
    make: Callable[[str], Any]  # state dir → exporter
    cpu_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)
    lost: int = 0
    dropped: int = 0
    #: Traces the assembler let go before their trace_wait was over (max_traces, max_held_bytes): a
    #: failing one among them is processed without what arrives for it later.
    early: float = 0


def one_round(signal: str, config: Config, requests: int, threads: int) -> None:
    """Fresh provider + batch processor around ``config``'s exporter; measures one round into it."""
    with tempfile.TemporaryDirectory() as state:
        inner = config.make(state)
        handler: logging.Handler | None = None
        logger = logging.getLogger("checkout.handlers")
        if signal == "spans":
            exporter: Counting = CountingSpans(inner)
            provider: Any = TracerProvider(resource=RESOURCE)
            provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=QUEUE_SIZE))  # type: ignore[arg-type]
            units = requests // threads * threads * SPANS_PER_REQUEST
        else:
            exporter = CountingLogs(inner)
            provider = LoggerProvider(resource=RESOURCE)
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_queue_size=QUEUE_SIZE))
            handler = LoggingHandler(logger_provider=provider)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
            units = requests // threads * threads * LOGS_PER_REQUEST
        engine = getattr(inner, "engine", None)
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            produce(signal, requests, threads, provider)
        finally:
            if handler is not None:
                logger.removeHandler(handler)
            provider.shutdown()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        config.cpu_us.append(cpu / units * 1e6)
        config.wall_us.append(wall / units * 1e6)
        config.lost += units - exporter.exported
        if engine is not None:
            config.dropped += engine.dropped
            config.early += (engine.metrics.value("autoheal_traces_evicted_total")
                             + engine.metrics.value("autoheal_traces_evicted_bytes_total"))


def measure(signal: str, configs: list[Config], rounds: int, requests: int, threads: int) -> None:
    for config in configs:  # warm-up: imports, connections, first-use caches
        one_round(signal, Config(config.name, config.make), max(requests // 10, threads), threads)
    for _ in range(rounds):
        for config in configs:
            one_round(signal, config, requests, threads)


def report(signal: str, configs: list[Config], rounds: int, requests: int, threads: int) -> None:
    unit = "span" if signal == "spans" else "record"
    per = SPANS_PER_REQUEST if signal == "spans" else LOGS_PER_REQUEST
    base = statistics.median(configs[0].cpu_us)
    officials = [c for c in configs if c.name.startswith("otlp")]
    print(f"{signal}: {threads} application threads, {requests // threads * threads * per:,} {unit}s per round, "
          f"{rounds} alternating rounds (medians)")
    print(f"{'exporter':<26} {'CPU µs/' + unit:>14} {'over none':>10} {'wall µs/' + unit:>15} {'lost':>6} "
          f"{'early':>6}  " + "  ".join(f"{'÷ ' + c.name:>14}" for c in officials))
    for config in configs:
        cpu = statistics.median(config.cpu_us)
        extra = cpu - base
        ratios = "  ".join(f"{extra / max(statistics.median(c.cpu_us) - base, 1e-9):>14.2f}" for c in officials)
        lost = config.lost + config.dropped
        print(f"{config.name:<26} {cpu:>14.2f} {extra:>10.2f} {statistics.median(config.wall_us):>15.2f} {lost:>6} "
              f"{config.early:>6,.0f}  " + (ratios if config is not configs[0] else ""))
    print("lost: not exported or dropped by the exporter (all rounds); early: traces let go before their "
          "trace_wait was over, failing or not (max_traces; all rounds); ÷: (exporter - none) / (official - none) of CPU per " + unit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round (default 10,000)")
    parser.add_argument("--threads", type=int, default=2, help="application threads (default 2)")
    parser.add_argument("--signals", nargs="+", choices=("spans", "logs"), default=["spans", "logs"])
    parser.add_argument("--protocols", nargs="+", choices=("http", "grpc"), default=["http", "grpc"],
                        help="official OTLP exporters to compare with (default both)")
    args = parser.parse_args()
    logging.getLogger("otel_autoheal").setLevel(logging.WARNING)
    receivers: list[subprocess.Popen[str]] = []
    try:
        addresses: dict[str, str] = {}
        for protocol in args.protocols:
            proc, found = launch([sys.executable, "-c", BARE_UVICORN if protocol == "http" else BARE_GRPC])
            receivers.append(proc)
            addresses[protocol] = found[protocol]
        for signal in args.signals:
            null = NullSpans if signal == "spans" else NullLogs
            configs = [Config("none (SDK only)", lambda _state, null=null: null())]  # type: ignore[misc]
            for protocol in args.protocols:
                make = official(signal, protocol, addresses[protocol])
                configs.append(Config(f"otlp-{protocol}", lambda _state, make=make: make()))  # type: ignore[misc]
            configs.append(Config("autoheal", lambda state, signal=signal: autoheal(signal, state)))  # type: ignore[misc]
            measure(signal, configs, args.rounds, args.requests, args.threads)
            report(signal, configs, args.rounds, args.requests, args.threads)
    finally:
        for proc in receivers:
            halt(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
