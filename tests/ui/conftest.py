"""Fixtures for the page tests: import paths, and where the screenshots of a run are kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tests.github_standin.fixture import github_openapi, github_standin, pytest_configure  # noqa: E402,F401


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``.test-artifacts/ui/`` in the checkout (ignored by git): the latest run's screenshots."""
    path = ROOT / ".test-artifacts" / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path
