"""Start otel-autoheal, run an app that fails, and show the issue it produced.

Run it through ``./scripts/demo`` (which sets up the virtualenv first).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    state = Path(os.environ.get("AUTOHEAL_DEMO_STATE") or tempfile.mkdtemp(prefix="autoheal-demo-"))
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_autoheal",
            "serve",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--state",
            str(state),
            "--trace-wait",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = service.stdout.readline() if service.stdout else ""
        match = re.search(r"http=127\.0\.0\.1:(\d+)", ready)
        if not match:
            print("otel-autoheal did not start", file=sys.stderr)
            return 1
        endpoint = f"http://127.0.0.1:{match.group(1)}"
        print(f"==> otel-autoheal is listening on {endpoint} (state: {state})")
        print("==> running examples/quickstart/failing_app.py, which fails twice with the same bug")
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        for _ in range(2):
            subprocess.run(
                [sys.executable, str(HERE / "failing_app.py"), "checkout", "--user", "42"], env=env, check=False
            )
        deadline = time.monotonic() + 60
        issues: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state", str(state)],
                capture_output=True,
                text=True,
                check=True,
            )
            issues = json.loads(out.stdout)
            if issues and issues[0]["count"] == 2:
                break
            time.sleep(0.5)
        print("\n==> otel-autoheal issues")
        subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--state", str(state)], check=True)
        if not issues:
            print("no issue was filed", file=sys.stderr)
            return 1
        print(f"\n==> otel-autoheal show {issues[0]['id']}\n")
        subprocess.run(
            [sys.executable, "-m", "otel_autoheal", "show", str(issues[0]["id"]), "--state", str(state)], check=True
        )
        return 0
    finally:
        service.terminate()
        service.wait(20)


if __name__ == "__main__":
    sys.exit(main())
