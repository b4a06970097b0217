"""The outbox survives SIGKILL of the process running the sink: no lost and no duplicate issue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gh_harness import ROOT, wait_for
from gh_occurrences import fingerprint
from tests.github_standin.server import GitHubStandin

SCRIPT = Path(__file__).resolve().parent / "gh_sink_process.py"


@pytest.fixture
def spawn(github_standin: GitHubStandin) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(state_dir: Path, groups: int, per_group: int) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_GITHUB_"))}
        env.update(github_standin.env())
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": "0.2",
                "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL": "3600",
                "AUTOHEAL_GITHUB_BACKOFF_BASE": "0.1",
                "AUTOHEAL_GITHUB_BACKOFF_MAX": "0.5",
                "AUTOHEAL_GITHUB_TIMEOUT": "30",
            }
        )
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(state_dir), str(groups), str(per_group)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_sigkill_mid_burst_then_restart_files_every_group_once(
    github_standin: GitHubStandin, spawn: object, tmp_path: Path
) -> None:
    """Kill -9 while a create is in flight at GitHub; the restarted sink files the rest, none twice."""
    groups = 8
    first = spawn(tmp_path, groups, 3)  # type: ignore[operator]
    assert first.stdout.readline().strip() == "QUEUED"
    wait_for(lambda: len(github_standin.issues()) >= 3, what="a few issues before the crash")
    hang = github_standin.fault("hang", count=1, seconds=120, process_first=True, methods=["POST"],
                                path_pattern=r"/issues$")
    before = len(github_standin.issues())
    wait_for(lambda: hang.count == 0 and len(github_standin.issues()) > before, what="a create stuck in flight")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    filed_before_restart = len(github_standin.issues())
    assert filed_before_restart < groups, "the crash came too late to test anything"
    github_standin.clear_faults()

    second = spawn(tmp_path, 0, 0)  # type: ignore[operator]
    assert second.stdout.readline().strip() == "QUEUED"
    assert second.stdout.readline().strip() == "DRAINED"
    assert second.wait(30) == 0
    lookups = [e for e in github_standin.log() if e.method == "GET" and e.path.endswith("/issues")]
    assert lookups, "the restarted sink never looked for the issue created before the crash"
    bodies = [i["body"] for i in github_standin.issues()]
    assert len(bodies) == groups
    for g in range(groups):
        assert sum(f"fingerprint={fingerprint(f'crash{g}')}" in b for b in bodies) == 1
