"""Unit tests for sys.excepthook chaining."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from autoheal_instrumentation import _cli_hooks, _cli_run


@pytest.fixture
def fresh_hook_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: calls.append(a))
    monkeypatch.setattr(_cli_hooks, "_installed", False)
    monkeypatch.setattr(_cli_hooks, "_previous_hook", None)
    monkeypatch.setattr(_cli_run, "_active", None)
    yield calls


def test_previous_hook_is_called_with_the_same_arguments(fresh_hook_state: list[tuple[Any, ...]]) -> None:
    """Our hook chains to the hook that was installed before it."""
    _cli_run.install_hooks()
    assert sys.excepthook is _cli_hooks._excepthook
    exc = ValueError("boom")
    sys.excepthook(ValueError, exc, None)
    assert fresh_hook_state == [(ValueError, exc, None)]


def test_previous_hook_is_called_even_when_recording_fails(
    fresh_hook_state: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside our recording never stops the previous hook from running."""

    class Broken:
        def record_exception(self, exc: BaseException) -> None:
            raise RuntimeError("internal failure")

    _cli_run.install_hooks()
    monkeypatch.setattr(_cli_run, "_active", Broken())
    exc = KeyError("k")
    sys.excepthook(KeyError, exc, None)
    assert fresh_hook_state == [(KeyError, exc, None)]


def test_hook_is_installed_once(fresh_hook_state: list[tuple[Any, ...]]) -> None:
    """Installing twice does not chain our hook to itself."""
    _cli_run.install_hooks()
    _cli_run.install_hooks()
    sys.excepthook(OSError, OSError("x"), None)
    assert len(fresh_hook_state) == 1


def test_interactive_shell_is_left_alone(
    fresh_hook_state: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an interactive interpreter (sys.ps1 set) the excepthook is not replaced."""
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    before = sys.excepthook
    _cli_run.install_hooks()
    assert sys.excepthook is before


def test_previous_thread_hook_is_called_even_when_recording_fails(
    fresh_hook_state: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker thread's exception reaches the previous threading.excepthook even when our recording fails."""
    import threading

    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    monkeypatch.setattr(_cli_hooks, "_previous_thread_hook", None)

    class Broken:
        def record_thread_exception(self, exc: BaseException) -> None:
            raise RuntimeError("internal failure")

    _cli_run.install_hooks()
    assert threading.excepthook is _cli_hooks._thread_excepthook
    monkeypatch.setattr(_cli_run, "_active", Broken())
    exc = ConnectionError("worker lost the database")

    def work() -> None:
        raise exc

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert seen == [exc]
