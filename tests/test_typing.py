"""The package type-checks with mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_clean():
    """mypy reports no errors in otel_autoheal."""
    result = subprocess.run([sys.executable, "-m", "mypy", "otel_autoheal"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
