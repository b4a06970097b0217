"""Error-POST latency while /metrics is scraped, with many groups in the state, for two checkouts side by side.

For each checkout (``--before`` and ``--after``, default: this one only) a state with ``--groups``
groups (issue-sized bodies) is seeded, ``otel-autoheal serve`` is started from that checkout, and
``--posts`` error POSTs (one failed span each, OTLP/JSON) are timed, first alone and then while
``--scrapers`` threads fetch /metrics back to back; scrape latency is timed too. The machine is
shared and noisy: compare the two columns of one run.

    python bench/metrics_load.py [--before /path/to/old/checkout] [--groups 20000] [--scrapers 6] [--posts 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

SEED = textwrap.dedent("""
    import sys
    from otel_autoheal.state.sqlite import SQLiteStore
    store = SQLiteStore.in_dir(sys.argv[1])
    body = "seeded issue body line\\n" * 48
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, service, exception_type,"
            " source, grouping_fields) VALUES (?, ?, ?, 1, 1.0, ?, 'seed', 'SeedError', 'bench', '{}')",
            ((f"seed-{i:06d}", f"SeedError {i}", body, 1.0 + i) for i in range(int(sys.argv[2]))))
    store.close()
""")


def _error_payload(index: int) -> bytes:
    now = time.time_ns()
    span = {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": "op", "kind": 1,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000), "status": {"code": 2},
            "events": [{"name": "exception", "timeUnixNano": str(now), "attributes": [
                {"key": "exception.type", "value": {"stringValue": f"Bench{index % 7}Error"}},
                {"key": "exception.message", "value": {"stringValue": "boom"}}]}]}
    payload = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "b"}}]},
                                  "scopeSpans": [{"scope": {"name": "bench"}, "spans": [span]}]}]}
    return json.dumps(payload).encode()


def _timed(url: str, data: bytes | None = None, timeout: float = 60) -> tuple[float, int]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                     method="POST" if data else "GET")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0
    return time.perf_counter() - start, status


def _summary(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"


def run(checkout: Path, groups: int, scrapers: int, posts: int) -> dict[str, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTOHEAL_")}, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory() as state:
        subprocess.run([sys.executable, "-c", SEED, state, str(groups)], cwd=checkout, env=env, check=True)
        proc = subprocess.Popen([sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0",
                                 "--otlp-http", "127.0.0.1:0", "--state", state, "--trace-wait", "0.5"],
                                cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            match = re.search(r"http=127\.0\.0\.1:(\d+)", line)
            if not match:
                raise SystemExit(f"{checkout}: service did not start: {line!r}")
            base = f"http://127.0.0.1:{match.group(1)}"
            post_alone = [_timed(f"{base}/v1/traces", _error_payload(i))[0] for i in range(posts)]
            stop = threading.Event()
            scrape_times: list[float] = []
            failures = [0]

            def scrape() -> None:
                while not stop.is_set():
                    elapsed, status = _timed(f"{base}/metrics")
                    if status == 200:
                        scrape_times.append(elapsed)
                    else:
                        failures[0] += 1

            threads = [threading.Thread(target=scrape, daemon=True) for _ in range(scrapers)]
            for thread in threads:
                thread.start()
            post_loaded = []
            acked = 0
            for i in range(posts):
                elapsed, status = _timed(f"{base}/v1/traces", _error_payload(i))
                post_loaded.append(elapsed)
                acked += status == 200
            stop.set()
            for thread in threads:
                thread.join(120)
            return {
                "error POST, no scrapers": _summary(post_alone),
                f"error POST, {scrapers} scrapers": _summary(post_loaded) + f" ({acked}/{posts} acknowledged)",
                f"/metrics scrape, {groups} groups": _summary(scrape_times) + f" ({len(scrape_times)} scrapes,"
                                                                              f" {failures[0]} failed)",
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same run (e.g. the old code)")
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--scrapers", type=int, default=6)
    parser.add_argument("--posts", type=int, default=40)
    args = parser.parse_args()
    columns = {}
    if args.before:
        columns["before"] = run(args.before.resolve(), args.groups, args.scrapers, args.posts)
    columns["after" if args.before else "this checkout"] = run(HERE, args.groups, args.scrapers, args.posts)
    for name, rows in columns.items():
        print(f"\n{name}:")
        for key, value in rows.items():
            print(f"  {key:<32} {value}")


if __name__ == "__main__":
    main()
