"""Fixtures for several otel-autoheal instances sharing PostgreSQL behind the real collector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(ROOT / "tests" / "collector")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from collector_stack import Binaries, ensure_binaries  # noqa: E402


@pytest.fixture(scope="session")
def scaleout_binaries() -> Binaries:
    """otelcol-autoheal from collector-config/build.sh (cached); a failed build fails the test."""
    return ensure_binaries()


