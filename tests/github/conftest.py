"""Fixtures for the GitHub sink tests: the stand-in plus a harness feeding real GroupUpdates."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from gh_harness import Harness  # noqa: E402
from tests.github_standin.fixture import github_openapi, github_standin, pytest_configure  # noqa: E402,F401
from tests.github_standin.server import GitHubStandin  # noqa: E402


@pytest.fixture
def harness(github_standin: GitHubStandin, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(github_standin, tmp_path / "state")
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(autouse=True)
def _no_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real GitHub settings must never leak into a test."""
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "GH_", "AUTOHEAL_GITHUB_")):
            monkeypatch.delenv(key, raising=False)
