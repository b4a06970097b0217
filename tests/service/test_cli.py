"""The command line: --version, subcommand usage with "did you mean" for typos, unknown commands."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
    return subprocess.run([sys.executable, "-m", "otel_autoheal", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)


def test_version_prints_the_installed_distribution_version():
    """`--version` prints the version from the package metadata and exits 0."""
    result = _cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"otel-autoheal {version('otel-autoheal')}"


def test_typo_in_a_subcommand_flag_shows_that_subcommands_usage_and_a_suggestion(tmp_path):
    """A misspelt flag is reported by its subcommand's parser, with the closest flag suggested, exit 2."""
    result = _cli("serve", "--trace-wiat", "3", "--state", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("usage: otel-autoheal serve ")
    assert "unrecognized arguments: --trace-wiat 3; did you mean --trace-wait?" in result.stderr
    result = _cli("issues", "--jsn", "--state", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("usage: otel-autoheal issues ")
    assert "did you mean --json?" in result.stderr
    assert not list(tmp_path.iterdir())


def test_unknown_command_suggests_the_closest_one():
    """An unknown subcommand is named, the closest one suggested and the commands listed, exit 2."""
    result = _cli("isues")
    assert result.returncode == 2
    assert "unknown command 'isues'; did you mean 'issues'?" in result.stderr
    assert "serve, issues, show, status, repair" in result.stderr
