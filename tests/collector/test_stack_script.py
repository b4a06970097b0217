"""scripts/stack: the README's no-Docker recipe starts the three processes in order and stops them."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from collector_stack import Binaries, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "stack"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped running all the same.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_stack_up_files_an_issue_and_down_stops_everything(
    collector_binaries: Binaries, tmp_path: pathlib.Path
) -> None:
    """`stack up` waits for each process, a failing app's issue arrives through the collector, `stack down` stops all three."""
    ports = {name: f"127.0.0.1:{free_port()}" for name in (
        "STACK_OTLP_GRPC", "STACK_OTLP_HTTP", "STACK_AUTOHEAL_GRPC", "STACK_AUTOHEAL_HTTP", "STACK_JAEGER_UI",
        "STACK_JAEGER_GRPC", "STACK_JAEGER_HTTP", "STACK_JAEGER_QUERY_GRPC", "STACK_JAEGER_HEALTH",
        "STACK_COLLECTOR_HEALTH")}
    env = {
        **os.environ, **ports,
        "STACK_JAEGER_METRICS_PORT": str(free_port()), "STACK_COLLECTOR_METRICS_PORT": str(free_port()),
        "AUTOHEAL_STACK_DIR": str(tmp_path / "run"), "AUTOHEAL_BIN_CACHE": str(collector_binaries.otelcol.parent),
        "STACK_TRACE_WAIT": "6", "PY": sys.executable,
    }
    run = tmp_path / "run"
    try:
        up = subprocess.run(["bash", str(STACK), "up"], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        for name in ("jaeger", "autoheal", "collector"):
            assert f"{name} ready" in up.stderr
        assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://{ports['STACK_OTLP_HTTP']}" in up.stdout
        status = subprocess.run(["bash", str(STACK), "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and status.stdout.count("running (pid") == 3, status.stdout
        pids = [int((run / f"{name}.pid").read_text()) for name in ("jaeger", "autoheal", "collector")]

        app_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{ports['STACK_OTLP_HTTP']}"}
        failed = subprocess.run([sys.executable, str(ROOT / "examples" / "cli" / "app.py"), "sync", "--fail"],
                                env=app_env, capture_output=True, text=True, timeout=120)
        assert failed.returncode != 0

        def issues() -> list[dict[str, object]] | None:
            out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state",
                                  str(run / "state")], capture_output=True, text=True, env=env, cwd=ROOT)
            found = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []
            return found or None

        found = wait_for(issues, timeout=90, what="the example app's issue through the stack", interval=0.5)
        assert found is not None and "ValueError" in str(found[0]["title"])
    finally:
        down = subprocess.run(["bash", str(STACK), "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert all(not _alive(pid) for pid in pids)
    after = subprocess.run(["bash", str(STACK), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode != 0 and after.stdout.count("not running") == 3
