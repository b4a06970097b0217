"""Start otel-autoheal, run apps that fail, and show the issues they produced.

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
from typing import Any

HERE = Path(__file__).resolve().parent


def _issues(state: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state", str(state)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> int:
    state = Path(os.environ.get("AUTOHEAL_DEMO_STATE") or tempfile.mkdtemp(prefix="autoheal-demo-"))
    service = subprocess.Popen(
        [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
         "--state", str(state), "--trace-wait", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = service.stdout.readline() if service.stdout else ""
        match = re.search(r"http=127\.0\.0\.1:(\d+)", ready)
        if not match:
            print("otel-autoheal did not start", file=sys.stderr)
            return 1
        endpoint = f"http://127.0.0.1:{match.group(1)}"
        page = re.search(r"ui=(\S+)", ready)
        page_url = page.group(1) if page and page.group(1) != "off" else ""
        print(f"==> otel-autoheal is listening on {endpoint} (state: {state})")
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
               "AUTOHEAL_SPOOL_DIR": str(state / "spool")}
        cli = [sys.executable, str(HERE.parent / "cli" / "app.py")]
        print("\n==> examples/cli/app.py status   (succeeds: the instrumentation sends nothing)")
        subprocess.run([*cli, "status"], env=env, check=False)
        print("\n==> examples/cli/app.py sync --token s3cret --fail   (twice: the same bug, one issue)")
        for _ in range(2):
            subprocess.run([*cli, "sync", "--token", "s3cret", "--fail"], env=env, check=False)
        print("\n==> examples/quickstart/failing_app.py   (an app set up with the plain OpenTelemetry SDK)")
        subprocess.run([sys.executable, str(HERE / "failing_app.py"), "checkout", "--user", "42"], env=env, check=False)
        deadline = time.monotonic() + 60
        issues: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            issues = _issues(state)
            if len(issues) == 2 and sorted(i["count"] for i in issues) == [1, 2]:
                break
            time.sleep(0.5)
        print("\n==> otel-autoheal issues")
        subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--state", str(state)], check=True)
        if not issues:
            print("no issue was filed", file=sys.stderr)
            return 1
        cli_issue = max(issues, key=lambda i: int(i["count"]))
        print(f"\n==> otel-autoheal show {cli_issue['id']}\n")
        subprocess.run([sys.executable, "-m", "otel_autoheal", "show", str(cli_issue["id"]), "--state", str(state)],
                       check=True)
        if page_url:
            print(f"\n==> open {page_url} in a browser: the issues, their stacks, logs and history")
            print(f"    (this issue: {page_url}groups/{cli_issue['id']})")
            if sys.stdin.isatty():
                print("    press Enter (or Ctrl-C) to stop otel-autoheal")
                try:
                    input()
                except (EOFError, KeyboardInterrupt):
                    pass
        return 0
    finally:
        service.terminate()
        service.wait(20)


if __name__ == "__main__":
    sys.exit(main())
