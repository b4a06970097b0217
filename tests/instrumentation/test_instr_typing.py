"""The instrumentation package type-checks with mypy --strict."""

from __future__ import annotations

import subprocess
import sys

from _pyinstr_helpers import REPO


def test_mypy_strict_clean() -> None:
    """mypy --strict reports no errors in autoheal_instrumentation."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "instrumentation/src/autoheal_instrumentation"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
