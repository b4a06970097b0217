"""Start-up + exit overhead of error-reporting setups on a small successful CLI run.

Runs, side by side and interleaved, many repetitions of the same argparse+logging CLI:
bare; instrumented with otel-autoheal (errors-only, the default); sentry-sdk initialised with a
DSN pointing at a closed local port; a naive OpenTelemetry setup (SDK + OTLP http/protobuf
exporter + BatchSpanProcessor at start, exporting to a local OTLP sink that answers 200) and,
when grpcio is installed, the same with the OTLP/gRPC exporter. Reports median wall time per
run and the overhead and ratio against bare.

    python bench/cli_overhead.py --runs 40 --output cli_overhead.md
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BODY = textwrap.dedent(
    """
    import argparse, logging
    log = logging.getLogger("benchcli")

    def main(argv=None):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        parser = argparse.ArgumentParser(prog="benchcli")
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("sum").add_argument("n", type=int)
        args = parser.parse_args(argv)
        log.info("summing %d numbers", args.n)
        if args.n < 0:
            raise ValueError("cannot sum a negative count")
        total = sum(range(args.n))
        log.info("total %d", total)
        return 0
    """
)

VARIANTS: dict[str, str] = {
    "bare": BODY + "\nraise SystemExit(main())\n",
    "otel-autoheal (errors-only)": (
        "from autoheal_instrumentation import instrument_cli\n" + BODY + "\nraise SystemExit(instrument_cli(main)())\n"
    ),
    "sentry-sdk init": (
        "import sentry_sdk\n"
        "sentry_sdk.init(dsn='http://public@127.0.0.1:{closed_port}/1')\n" + BODY + "\nraise SystemExit(main())\n"
    ),
    "sentry-sdk init (auto_enabling_integrations=False)": (
        "import sentry_sdk\n"
        "sentry_sdk.init(dsn='http://public@127.0.0.1:{closed_port}/1', auto_enabling_integrations=False)\n"
        + BODY
        + "\nraise SystemExit(main())\n"
    ),
    "naive OTel (SDK + OTLP http + BatchSpanProcessor)": (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.resources import Resource\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
        "provider = TracerProvider(resource=Resource.create({{'service.name': 'benchcli'}}))\n"
        "provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint='{sink}/v1/traces')))\n"
        "trace.set_tracer_provider(provider)\n" + BODY + "\n"
        "with trace.get_tracer('benchcli').start_as_current_span('benchcli sum'):\n"
        "    code = main()\n"
        "provider.shutdown()\n"
        "raise SystemExit(code)\n"
    ),
    "naive OTel (SDK + OTLP gRPC + BatchSpanProcessor)": (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.resources import Resource\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter\n"
        "provider = TracerProvider(resource=Resource.create({{'service.name': 'benchcli'}}))\n"
        "provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint='{grpc_sink}', insecure=True)))\n"
        "trace.set_tracer_provider(provider)\n" + BODY + "\n"
        "with trace.get_tracer('benchcli').start_as_current_span('benchcli sum'):\n"
        "    code = main()\n"
        "provider.shutdown()\n"
        "raise SystemExit(code)\n"
    ),
}

#: Variants measured on a failing run (unhandled ValueError), each against this baseline.
FAILING = {
    "bare, failing run": "bare",
    "otel-autoheal, failing run (exported to a local OTLP sink)": "otel-autoheal (errors-only)",
}
FAILING_BASELINE = "bare, failing run"

REQUIRES = {
    "sentry-sdk init": "sentry_sdk",
    "sentry-sdk init (auto_enabling_integrations=False)": "sentry_sdk",
    "naive OTel (SDK + OTLP http + BatchSpanProcessor)": "opentelemetry.exporter.otlp.proto.http",
    "naive OTel (SDK + OTLP gRPC + BatchSpanProcessor)": "opentelemetry.exporter.otlp.proto.grpc",
    "otel-autoheal (errors-only)": "autoheal_instrumentation",
}


class _Sink(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _grpc_sink() -> tuple[Any, str] | None:
    try:
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    except ImportError:
        return None

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}"


def _available(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _run_once(script: Path, env: dict[str, str], failing: bool = False) -> float:
    started = time.perf_counter()
    argv = ["sum", "-1" if failing else "1000"]
    proc = subprocess.run([sys.executable, str(script), *argv], env=env, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if proc.returncode != (1 if failing else 0):
        raise RuntimeError(f"{script.name} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return elapsed


def measure(runs: int, warmup: int) -> list[dict[str, Any]]:
    """Run every variant ``runs`` times (interleaved) and return one row per variant."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    grpc_sink = _grpc_sink()
    closed = _closed_port()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cli-overhead-") as tmp:
            fmt: dict[str, str] = {
                "closed_port": str(closed),
                "sink": f"http://127.0.0.1:{http.server_address[1]}",
                "grpc_sink": grpc_sink[1] if grpc_sink else "",
            }
            scripts: dict[str, Path] = {}
            for i, (name, source) in enumerate(VARIANTS.items()):
                needed = REQUIRES.get(name)
                if needed and not _available(needed):
                    continue
                if "grpc_sink" in source and grpc_sink is None:
                    continue
                path = Path(tmp) / f"variant{i}.py"
                path.write_text(source.format(**fmt))
                scripts[name] = path
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_", "SENTRY_"))}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure warm starts, as installed packages have .pyc files
            env["AUTOHEAL_SPOOL_DIR"] = str(Path(tmp) / "spool")
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = fmt["sink"]
            plan = [(name, path, False) for name, path in scripts.items()]
            plan += [(name, scripts[source], True) for name, source in FAILING.items() if source in scripts]
            times: dict[str, list[float]] = {name: [] for name, _, _ in plan}
            for _ in range(warmup):
                for _name, path, failing in plan:
                    _run_once(path, env, failing)
            for _ in range(runs):
                for name, path, failing in plan:
                    times[name].append(_run_once(path, env, failing))
    finally:
        http.shutdown()
        if grpc_sink is not None:
            grpc_sink[0].stop(None)
    for name in [*VARIANTS, *FAILING]:
        baseline = statistics.median(times[FAILING_BASELINE if name in FAILING else "bare"])
        if name not in times:
            rows.append(
                {"name": name, "median_ms": None, "min_ms": None, "p90_ms": None, "overhead_ms": None, "ratio": None}
            )
            continue
        samples = sorted(times[name])
        median = statistics.median(samples)
        p90 = samples[min(len(samples) - 1, round(0.9 * (len(samples) - 1)))]
        rows.append(
            {
                "name": name,
                "median_ms": median * 1000,
                "min_ms": samples[0] * 1000,
                "p90_ms": p90 * 1000,
                "overhead_ms": (median - baseline) * 1000,
                "ratio": median / baseline,
            }
        )
    return rows


def render(rows: list[dict[str, Any]], runs: int) -> str:
    def num(v: float | None, fmt: str) -> str:
        return "n/a (not installed)" if v is None else format(v, fmt)

    lines = [
        f"CLI start-up+exit wall time per run, {runs} interleaved runs per setup "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)",
        "",
        "| setup | median ms | min ms | p90 ms | overhead ms (median) | ratio (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {num(r['median_ms'], '.1f')} | {num(r['min_ms'], '.1f')} | {num(r['p90_ms'], '.1f')} | "
            f"{num(r['overhead_ms'], '+.1f')} | {num(r['ratio'], '.2f')}x |"
        )
    lines += [
        "",
        "Successful runs are compared with the bare successful run, failing runs with the bare failing run.",
        "sentry-sdk's default auto-enabling integrations import every supported framework that is installed,",
        "so its start-up cost depends on the environment (this one has starlette, httpx, grpc, typer...).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CLI overhead: bare vs otel-autoheal vs sentry-sdk vs naive OTel")
    parser.add_argument("--runs", type=int, default=40, help="measured runs per variant (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per variant first (default 3)")
    parser.add_argument("--output", help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    rows = measure(args.runs, args.warmup)
    table = render(rows, args.runs)
    print(table, end="")
    if args.output:
        Path(args.output).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
