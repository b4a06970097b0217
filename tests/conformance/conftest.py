"""Fixtures of the conformance suite: producer apps started per test and always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from conformance_support import ProducerApp


@pytest.fixture
def producer(tmp_path: Path) -> Iterator[Callable[..., ProducerApp]]:
    """Start producer apps (``argv``, ``env``, ``cwd``) that are stopped at teardown, flushing first."""
    started: list[ProducerApp] = []

    def start(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> ProducerApp:
        app = ProducerApp(argv, env, cwd, tmp_path / f"app{len(started)}.log")
        started.append(app)
        return app.wait_listening()

    yield start
    for app in started:
        app.stop()
