"""The web page's list with many groups, timed at the server, next to ``otel-autoheal issues --json``.

Starts ``otel-autoheal serve`` from this checkout on free ports with a fresh state, sends
``--groups`` distinct errors as real OTLP/JSON (100 failing traces per request, 20 services, a
Python stack each; a tenth of them again in a second version), waits until every group is
recorded, then fetches pages ``--runs`` times each and reports the median and maximum of the
server's own time (the ``Server-Timing`` header: reading the store and rendering, without the
network and the client) and of the wall time seen by the client. Beside it, the same state is
listed with ``otel-autoheal issues --json`` (a process of its own each run, as a user would).

    python bench/ui.py [--groups 10000] [--runs 30] [--database-url postgresql://…]

With ``--database-url`` the state is that (empty) PostgreSQL database instead of a SQLite file.
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
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
SERVICES = 20
PER_REQUEST = 100


def _attrs(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in values.items()]


def _payload(first: int, count: int, version: str) -> bytes:
    now = time.time_ns()
    spans = []
    for index in range(first, first + count):
        stack = ("Traceback (most recent call last):\n"
                 f'  File "/srv/app/handlers/orders.py", line 41, in handle\n    place(order)\n'
                 f'  File "/srv/app/domain/step_{index % 50}.py", line 17, in apply_{index}\n    check(order)\n'
                 '  File "/usr/lib/python3.12/site-packages/pydantic/main.py", line 212, in validate\n    raise e\n'
                 f"Bench{index:05d}Error: order {index} rejected")
        event = {"name": "exception", "timeUnixNano": str(now), "attributes": _attrs({
            "exception.type": f"Bench{index:05d}Error", "exception.message": f"order {index} rejected",
            "exception.stacktrace": stack})}
        spans.append({"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": "POST /orders",
                      "kind": 2, "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000),
                      "status": {"code": 2}, "events": [event]})
    resource = {"service.name": f"svc-{first // PER_REQUEST % SERVICES:02d}", "service.version": version,
                "autoheal.source": "bench"}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": _attrs(resource)},
                                          "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}).encode()


def _post(url: str, data: bytes) -> None:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    for _ in range(60):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(1)  # the pipeline is behind: retry, as an OTLP exporter would
    raise RuntimeError("the service kept answering 503")


def _get(url: str) -> tuple[float, float, int]:
    """Server time (ms, from Server-Timing), client wall time (ms), body bytes."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        timing = response.headers.get("Server-Timing", "")
    wall = (time.perf_counter() - started) * 1000
    match = re.search(r"dur=([\d.]+)", timing)
    return (float(match.group(1)) if match else float("nan")), wall, len(body)


def _total(endpoint: str) -> int:
    with urllib.request.urlopen(f"{endpoint}/api/groups?per_page=1", timeout=60) as response:
        return int(json.loads(response.read())["total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="autoheal-bench-ui-"))
    where = ["--database-url", args.database_url] if args.database_url else ["--state", str(state)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "GITHUB_", "GH_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    service = subprocess.Popen(
        [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
         *where, "--trace-wait", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=HERE, env=env, start_new_session=True)
    try:
        ready = service.stdout.readline() if service.stdout else ""
        match = re.search(r"http=127\.0\.0\.1:(\d+)", ready)
        if not match:
            print(f"the service did not start: {ready!r}", file=sys.stderr)
            return 1
        endpoint = f"http://127.0.0.1:{match.group(1)}"
        started = time.monotonic()
        for first in range(0, args.groups, PER_REQUEST):
            _post(f"{endpoint}/v1/traces", _payload(first, min(PER_REQUEST, args.groups - first), "1.0.0"))
        for first in range(0, args.groups, PER_REQUEST * 10):  # a second version for a tenth of the groups
            _post(f"{endpoint}/v1/traces", _payload(first, min(PER_REQUEST, args.groups - first), "1.1.0"))
        while _total(endpoint) < args.groups:
            time.sleep(1)
        time.sleep(3)  # the last second-version occurrences
        print(f"{args.groups} groups recorded from OTLP in {time.monotonic() - started:.0f} s "
              f"(state {'PostgreSQL' if args.database_url else state})\n")
        # The group in the middle of the list (ids skip numbers on PostgreSQL).
        with urllib.request.urlopen(f"{endpoint}/api/groups?per_page=1&page={args.groups // 2}", timeout=60) as r:
            middle = json.loads(r.read())["groups"][0]["id"]

        pages = [
            (f"GET / (list, page 1 of {args.groups // 50})", "/"),
            ("GET /?sort=count", "/?sort=count"),
            (f"GET /?page={args.groups // 50 * 3 // 4}", f"/?page={args.groups // 50 * 3 // 4}"),
            ("GET /?q=Bench0999 (free text)", "/?q=Bench0999"),
            ("GET /?service=svc-07&spark=14d", "/?service=svc-07&spark=14d"),
            ("GET /?state=local (way to a fix)", "/?state=local"),
            ("GET /api/groups", "/api/groups"),
            (f"GET /groups/{middle} (group page)", f"/groups/{middle}"),
        ]
        rows = []
        for label, path in pages:
            _get(endpoint + path)  # warm-up
            samples = [_get(endpoint + path) for _ in range(args.runs)]
            server = [s[0] for s in samples]
            wall = [s[1] for s in samples]
            rows.append((label, statistics.median(server), max(server), statistics.median(wall), samples[0][2]))
        cli = []
        size = 0
        for _ in range(max(3, args.runs // 6)):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", *where],
                                 capture_output=True, check=True, cwd=HERE, env=env)
            cli.append((time.perf_counter() - t0) * 1000)
            size = len(out.stdout)
        print("| request | server median ms | server max ms | client median ms | bytes |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, median, peak, client_ms, nbytes in rows:
            print(f"| {label} | {median:.1f} | {peak:.1f} | {client_ms:.1f} | {nbytes:,} |")
        print(f"| `otel-autoheal issues --json` (whole process, {len(cli)} runs) | — | — | "
              f"{statistics.median(cli):.1f} | {size:,} |")
        return 0
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait(10)
        if service.stdout:
            service.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
