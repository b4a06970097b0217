"""The CLI overhead benchmark runs and prints its comparison table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _pyinstr_helpers import REPO, base_env


def test_cli_overhead_benchmark_prints_rows(tmp_path: Path) -> None:
    """bench/cli_overhead.py prints one table row per setup and writes the same table to --output."""
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cli_overhead.py"), "--runs", "2", "--warmup", "0", "--output", str(out)],
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and not line.startswith("| setup")]
    names = [row.split("|")[1].strip() for row in rows]
    required = [
        "bare",
        "otel-autoheal (errors-only)",
        "sentry-sdk init",
        "naive OTel (SDK + OTLP http + BatchSpanProcessor)",
        "bare, failing run",
        "otel-autoheal, failing run (exported to a local OTLP sink)",
    ]
    assert [n for n in names if n in required] == required
    for row in rows:
        if row.split("|")[1].strip() in required:
            assert "n/a" not in row and row.rstrip().endswith("x |")
    assert out.read_text() == proc.stdout
