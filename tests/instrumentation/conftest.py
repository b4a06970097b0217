"""Fixtures: a real OTLP/HTTP receiver; the real service is ``autoheal`` from tests/conftest.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _pyinstr_helpers import EXAMPLES, PYTHON, OtlpSink, Proc, base_env


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
