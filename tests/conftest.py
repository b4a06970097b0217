"""Shared fixtures: the real otel-autoheal service in a subprocess on free ports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from polling import wait_for
from processes import stop_process_group
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[1]


class AutohealProcess:
    """A running ``otel-autoheal serve`` subprocess and helpers to read its issues."""

    def __init__(self, state_dir: Path, extra_args: list[str], env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "service.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.args = [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0",
                     "--otlp-http", "127.0.0.1:0", "--state", str(state_dir), *extra_args]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.grpc_port = self.http_port = 0

    def start(self) -> AutohealProcess:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._log, env=self.env,
                                     start_new_session=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"grpc=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+)", line)
        if not match:
            self.stop()
            raise AssertionError(f"service did not start: {line!r}\n{self.log_path.read_text()[-3000:]}")
        self.grpc_port, self.http_port = int(match.group(1)), int(match.group(2))
        wait_for(self._healthy, 30, message="/healthz")
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_endpoint}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def issues(self) -> list[dict[str, Any]]:
        out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state", str(self.state_dir)],
                             capture_output=True, check=True, cwd=REPO, env=self.env)
        return json.loads(out.stdout)

    def wait_for_issues(self, predicate: int | Callable[[list[dict[str, Any]]], bool], timeout: float = 60) -> list[dict[str, Any]]:
        if isinstance(predicate, int):
            count = predicate
            predicate = lambda issues: len(issues) >= count  # noqa: E731
        check = predicate
        return wait_for(lambda: (lambda i: i if check(i) else None)(self.issues()), timeout, 0.25, "issues")  # type: ignore[no-any-return]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.http_endpoint}/metrics", timeout=5) as response:
            return response.read().decode()

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc:
            stop_process_group(self.proc, grace=20, sig=sig)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def autoheal_factory(tmp_path: Path) -> Iterator[Callable[..., AutohealProcess]]:
    """Start services with custom args/env; all are stopped at teardown."""
    started: list[AutohealProcess] = []

    def start(*extra_args: str, env: dict[str, str] | None = None, state_dir: Path | None = None,
              trace_wait: float = 0.5) -> AutohealProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
        full_env.update(env or {})
        state = state_dir or tmp_path / f"state{len(started)}"
        state.mkdir(parents=True, exist_ok=True)
        proc = AutohealProcess(state, ["--trace-wait", str(trace_wait), *extra_args], full_env)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def autoheal(autoheal_factory: Callable[..., AutohealProcess]) -> AutohealProcess:
    """The real service on free ports with a temporary state dir and a short trace wait."""
    return autoheal_factory()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server in a temporary directory (tests/postgres_server.py), removed afterwards."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
