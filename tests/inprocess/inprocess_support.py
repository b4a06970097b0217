"""Helpers shared by the in-process exporter tests (real SDK providers, real state store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_autoheal.model import GroupUpdate

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any AUTOHEAL_/OTEL_/GitHub settings of the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "OTEL_", "GITHUB_", "GH_"))}
    env.update(extra)
    return env


def read_issues(state_dir: Path | str) -> list[dict[str, Any]]:
    """``otel-autoheal issues --json --state DIR``, parsed."""
    out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state", str(state_dir)],
                         capture_output=True, check=True, cwd=REPO, env=clean_env(), timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines read AUTOHEAL_*/OTEL_* and GitHub settings from the environment: start from none."""
    for key in list(os.environ):
        if key.startswith(("AUTOHEAL_", "OTEL_", "GITHUB_", "GH_")):
            monkeypatch.delenv(key)


class BlockingSink:
    """Stands in for a remote issue tracker that hangs: ``handle`` blocks until released (max 5 s)."""

    name = "blocking"

    def __init__(self, block_for: float = 5.0) -> None:
        self.block_for = block_for
        self.entered = threading.Event()
        self.release = threading.Event()
        self.handled: list[GroupUpdate] = []

    def handle(self, update: GroupUpdate) -> None:
        self.entered.set()
        self.release.wait(self.block_for)
        self.handled.append(update)

    def status(self) -> dict[str, Any]:
        return {"sink": self.name}

    def close(self, timeout: float = 5.0) -> None:
        self.release.set()


class FailingSink:
    """Stands in for a remote issue tracker that is down: every ``handle`` raises."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, update: GroupUpdate) -> None:
        self.calls += 1
        raise ConnectionError("issue tracker unreachable")

    def status(self) -> dict[str, Any]:
        return {"sink": self.name}

    def close(self, timeout: float = 5.0) -> None:
        return None


@pytest.fixture
def blocking_sink() -> Iterator[BlockingSink]:
    sink = BlockingSink()
    yield sink
    sink.release.set()
