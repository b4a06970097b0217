"""Fixtures: a real OTLP/HTTP receiver (opentelemetry-proto parsing) and the real service when installed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pyinstr_helpers import EXAMPLES, PYTHON, OtlpSink, Proc, Service, base_env, service_command


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def run_cli(spool_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(args: list[str], endpoint: str, timeout: float = 60, script: Path | None = None, **env: str) -> Any:
        started = time.monotonic()
        proc = subprocess.run(
            [PYTHON, str(script or EXAMPLES / "cli" / "app.py"), *args],
            env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, AUTOHEAL_SPOOL_DIR=str(spool_dir), **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        proc.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
        return proc

    return run


@pytest.fixture
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


@pytest.fixture
def autoheal_service() -> Iterator[Service]:
    """The real otel-autoheal service (skips when it is not installed in this environment)."""
    command = service_command()
    if command is None:
        pytest.skip("otel-autoheal service not installed (pip install -e '.[test]' at the repo root)")
    service = Service(command)
    yield service
    service.close()
