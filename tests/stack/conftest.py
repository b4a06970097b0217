"""Fixtures for the cross-language whole-stack test: Jaeger, the GitHub stand-in, the JS SDK paths."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(ROOT / "tests" / "collector")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from collector_stack import Binaries, Jaeger, ensure_binaries, start_jaeger  # noqa: E402
from tests.github_standin.fixture import github_openapi, github_standin, pytest_configure  # noqa: E402,F401


@pytest.fixture(scope="session")
def stack_binaries() -> Binaries:
    """otelcol-autoheal and jaeger from collector-config/build.sh (cached); a failed build fails the test."""
    return ensure_binaries()


@pytest.fixture
def stack_jaeger(stack_binaries: Binaries, tmp_path: Path) -> Iterator[Jaeger]:
    instance = start_jaeger(stack_binaries.jaeger, tmp_path)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(autouse=True)
def _no_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real GitHub or OTel settings must never leak into the processes of this test."""
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "GH_", "AUTOHEAL_GITHUB_", "OTEL_")):
            monkeypatch.delenv(key, raising=False)
