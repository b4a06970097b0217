"""Fixtures for the ``otel-autoheal init`` tests: temporary git repositories and the GitHub REST stand-in
(``github_standin`` from tests/github_standin, validated against GitHub's OpenAPI description)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import onboarding_helpers  # noqa: F401 - puts the repository root on sys.path for the next import
from tests.github_standin.fixture import github_openapi, github_standin, pytest_configure  # noqa: F401
from tests.github_standin.server import GitHubStandin


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh repository made with the real ``git init``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    return repo


@pytest.fixture
def github(github_standin: GitHubStandin) -> GitHubStandin:  # noqa: F811 - pytest fixture parameter
    """The GitHub REST stand-in (a shorter name for ``github_standin``)."""
    return github_standin
