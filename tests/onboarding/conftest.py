"""Fixtures for the ``otel-autoheal init`` tests: temporary git repositories and a GitHub REST stand-in."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from onboarding_helpers import MiniGitHub


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh repository made with the real ``git init``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    return repo


@pytest.fixture
def github() -> Iterator[MiniGitHub]:
    """A running GitHub REST stand-in, stopped after the test."""
    standin = MiniGitHub().start()
    try:
        yield standin
    finally:
        standin.stop()
