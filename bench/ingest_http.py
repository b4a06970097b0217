"""OTLP/HTTP (protobuf) ingest of otel-autoheal vs bare parse-only receivers, with gRPC in the same run.

Same load as ``bench/ingest.py`` (5-span traces, 1% with an exception and 5 log records),
pre-serialised once and POSTed over keep-alive connections by client processes. Receivers:

- bare uvicorn (httptools) ASGI app that only parses the protobuf body (the floor for HTTP);
- bare stdlib ``ThreadingHTTPServer`` that only parses (what the old receiver was built on);
- otel-autoheal serve, OTLP/HTTP, from this checkout;
- optionally otel-autoheal serve from another checkout (``--compare-with /path``, e.g. the old receiver);
- bare grpcio receiver and otel-autoheal over OTLP/gRPC (the figures of ``bench/ingest.py``).

All run at once and take turns in alternating rounds, so noise on the shared machine hits all
alike; medians of the rounds are printed with ratios. Because throughput on a busy shared machine
swings with the other work, each receiver's own CPU time per 1,000 spans (user + system, from
/proc) is printed too: it measures the cost of the receiver itself and barely moves with load.

    python bench/ingest_http.py [--seconds 5] [--rounds 3] [--clients 2] [--compare-with ../main ...]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import BARE_RECEIVER, LOGS_METHOD, autoheal_cmd, build_requests, drive  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
PATHS = {LOGS_METHOD: "/v1/logs"}

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

BARE_STDLIB = textwrap.dedent("""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args):
            pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            kind = ExportLogsServiceRequest if self.path == "/v1/logs" else ExportTraceServiceRequest
            kind.FromString(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    print(f"ready http=127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
""")


def _http_client(address: str, seconds: float, seed: int, result: mp.Queue[tuple[int, int]]) -> None:
    requests = [(PATHS.get(method, "/v1/traces"), body, count) for method, body, count in build_requests(40, seed)]
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    spans = errors = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        path, body, count = requests[i % len(requests)]
        i += 1
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                spans += count
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.close()
    result.put((spans, errors))


def drive_http(address: str, seconds: float, clients: int) -> tuple[float, int]:
    queue: mp.Queue[tuple[int, int]] = mp.Queue()
    procs = [mp.Process(target=_http_client, args=(address, seconds, seed, queue)) for seed in range(clients)]
    start = time.monotonic()
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return sum(r[0] for r in results) / (time.monotonic() - start), sum(r[1] for r in results)


def launch(args: list[str], cwd: Path = HERE, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            cwd=cwd, env={**os.environ, **(env or {})})
    line = proc.stdout.readline() if proc.stdout else ""
    found = dict(re.findall(r"(grpc|http)=(127\.0\.0\.1:\d+)", line))
    if not found:
        raise SystemExit(f"server did not start: {line!r}")
    return proc, found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def halt(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per server per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--compare-with", type=Path, action="append", default=[],
                        help="another otel-autoheal checkout to measure alongside (repeatable)")
    args = parser.parse_args()

    states: list[tempfile.TemporaryDirectory[str]] = []

    def service(checkout: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
        states.append(tempfile.TemporaryDirectory())
        return launch(autoheal_cmd(states[-1].name), cwd=checkout, env={"PYTHONPATH": str(checkout)})

    procs: list[subprocess.Popen[str]] = []
    # name -> (protocol, address, server pid)
    targets: dict[str, tuple[str, str, int]] = {}
    try:
        proc, found = launch([sys.executable, "-c", BARE_UVICORN])
        procs.append(proc)
        targets["bare uvicorn+httptools (parse only)"] = ("http", found["http"], proc.pid)
        proc, found = launch([sys.executable, "-c", BARE_STDLIB])
        procs.append(proc)
        targets["bare stdlib ThreadingHTTPServer (parse only)"] = ("http", found["http"], proc.pid)
        proc, found = service(HERE)
        procs.append(proc)
        targets["otel-autoheal, OTLP/HTTP"] = ("http", found["http"], proc.pid)
        ours_grpc = (found["grpc"], proc.pid)
        for other in args.compare_with:
            proc, found = service(other.resolve())
            procs.append(proc)
            targets[f"otel-autoheal {other.name}, OTLP/HTTP"] = ("http", found["http"], proc.pid)
        proc, found = launch([sys.executable, "-c", BARE_RECEIVER])
        procs.append(proc)
        targets["bare grpcio receiver (parse only)"] = ("grpc", found["grpc"], proc.pid)
        targets["otel-autoheal, OTLP/gRPC"] = ("grpc", *ours_grpc)

        def run(protocol: str, address: str, seconds: float) -> tuple[float, int]:
            if protocol == "http":
                return drive_http(address, seconds, args.clients)
            return drive(address, seconds, args.clients)

        for protocol, address, _pid in targets.values():
            run(protocol, address, 1.0)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in targets}
        cpu_per_k: dict[str, list[float]] = {name: [] for name in targets}
        errors = dict.fromkeys(targets, 0)
        for _ in range(args.rounds):
            for name, (protocol, address, pid) in targets.items():
                cpu_before, started = cpu_seconds(pid), time.monotonic()
                rate, failed = run(protocol, address, args.seconds)
                spans = rate * (time.monotonic() - started)
                cpu_per_k[name].append((cpu_seconds(pid) - cpu_before) / max(spans, 1) * 1e6)
                rates[name].append(rate)
                errors[name] += failed
    finally:
        for proc in procs:
            halt(proc)
        for state in states:
            state.cleanup()

    median = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_per_k.items()}
    http_floor = median["bare uvicorn+httptools (parse only)"]
    grpc_floor = median["bare grpcio receiver (parse only)"]
    print(f"OTLP protobuf ingest, 5-span traces, 1% with an exception + 5 logs, {args.clients} client processes, "
          f"{args.seconds:g} s per server per round, {args.rounds} alternating rounds (medians)")
    print(f"{'receiver':<46} {'spans/s':>10} {'errors':>7} {'vs bare':>8} {'CPU ms/1k spans':>16}")
    for name, (protocol, _, _) in targets.items():
        floor = http_floor if protocol == "http" else grpc_floor
        print(f"{name:<46} {median[name]:>10,.0f} {errors[name]:>7} {median[name] / floor:>8.2f} {cpu[name]:>16.2f}")
    print("(HTTP rows are relative to the bare uvicorn app, gRPC rows to the bare grpcio receiver)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
