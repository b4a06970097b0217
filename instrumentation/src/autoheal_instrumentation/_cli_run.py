"""The state of one instrumented CLI run: started once per process, finished once at exit.

At start this only draws random ids, reads the clock and installs cheap hooks; the payload
builder, the OTLP protobuf code, urllib and threads are imported when there is something to send,
and even the exception helpers only when there is an exception (each module costs start-up time).
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from . import _cli_hooks, _config
from ._logbuffer import LogBuffer

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from ._config import Settings

__all__ = ["CliRun", "current_run", "init_cli", "install_hooks"]

_active: CliRun | None = None


def _ids() -> tuple[bytes, bytes]:
    raw = os.urandom(24)
    trace_id, span_id = raw[:16], raw[16:]
    if not any(trace_id):
        trace_id = b"\x00" * 15 + b"\x01"
    if not any(span_id):
        span_id = b"\x00" * 7 + b"\x01"
    return trace_id, span_id


def _exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


class CliRun:
    """The state of one instrumented CLI run (one per process)."""

    def __init__(self, settings: Settings, *, report_keyboard_interrupt: bool, ignore_exit_codes: Sequence[int]):
        self.settings = settings
        self.trace_id, self.span_id = _ids()
        self.start_ns = time.time_ns()
        self.argv = list(sys.argv)
        self.command: str | None = None
        self.command_resolver: Callable[[], str | None] | None = None
        self.exception: BaseException | None = None
        self.exception_ns = 0
        self.exit_code: int | None = None
        self.finished = False
        self.report_keyboard_interrupt = report_keyboard_interrupt
        self.ignore_exit_codes = frozenset(ignore_exit_codes)
        self.logs = LogBuffer(settings.log_level, settings.log_buffer)
        self._flush_thread: Any = None

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.logs.install()
        install_hooks()
        atexit.register(self._atexit)
        self._start_spool_flush()

    def _start_spool_flush(self) -> None:
        from . import _spool

        if not _spool.pending(self.settings.spool_dir):
            return
        from ._cli_delivery import start_spool_flush

        self._flush_thread = start_spool_flush(self.settings)

    # -- recording -----------------------------------------------------------------------------
    def record_exception(self, exc: BaseException) -> None:
        """Remember the run's failure; the first one wins."""
        from ._exceptions import mark_seen, seen

        if self.exception is not None or seen(exc):
            return
        mark_seen(exc)
        if isinstance(exc, SystemExit):
            code = _exit_code_of(exc)
            self.exit_code = code
            if code == 0 or code in self.ignore_exit_codes:
                return
            # "except Error: log; sys.exit(1)": the handled exception is the real error.
            inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
            if inner is not None and not isinstance(inner, (SystemExit, KeyboardInterrupt)):
                exc = inner
        elif isinstance(exc, KeyboardInterrupt):
            self.exit_code = 130
            if not self.report_keyboard_interrupt:
                return
        else:
            self.exit_code = 1
        self.exception = exc
        self.exception_ns = time.time_ns()

    def record_thread_exception(self, exc: BaseException) -> None:
        """An unhandled exception in another thread: reported, but the exit code stays the process's own."""
        from ._exceptions import mark_seen, seen

        if self.exception is not None or isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return
        if seen(exc):
            return
        mark_seen(exc)
        self.exception = exc
        self.exception_ns = time.time_ns()

    def _atexit(self) -> None:
        self.finish(None)

    # -- finish --------------------------------------------------------------------------------
    def finish(self, exit_code: int | None) -> None:
        """End the run: export when it failed (or always in full mode), within the time bound."""
        global _active
        if self.finished:
            return
        self.finished = True
        if _active is self:
            _active = None
        try:
            if exit_code is not None and self.exit_code is None:
                self.exit_code = exit_code
            end_ns = time.time_ns()
            deadline = time.monotonic() + self.settings.export_timeout
            if self.exception is not None or self.settings.mode == _config.MODE_FULL:
                from ._cli_delivery import deliver
                from ._cli_payload import build_payload

                traces, logs = build_payload(self, self.resolve_command(), end_ns)
                deliver(self.settings, traces, logs, deadline, after=self._flush_thread)
            if self._flush_thread is not None:
                self._flush_thread.join(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            from ._exceptions import debug

            debug("otel-autoheal: finishing the run failed: %r", exc)

    def resolve_command(self) -> str | None:
        """The sub-command that ran (``sync``, ``db migrate``), asked of the adapter once, at the end."""
        if self.command is None and self.command_resolver is not None:
            try:
                self.command = self.command_resolver()
            except Exception:
                self.command = None
        return self.command


# -- hooks: the active run hears about unhandled exceptions -------------------------------------
def _on_unhandled(exc: BaseException) -> None:
    run = _active
    if run is not None:
        run.record_exception(exc)


def _on_thread_unhandled(exc: BaseException) -> None:
    run = _active
    if run is not None:
        run.record_thread_exception(exc)


def install_hooks() -> None:
    """Chain ``sys.excepthook``/``threading.excepthook`` to the active run (once per process)."""
    _cli_hooks.install(_on_unhandled, _on_thread_unhandled)


# -- public API ----------------------------------------------------------------------------------
def current_run() -> CliRun | None:
    """The run being recorded in this process, if any."""
    return _active


def _default_service_name() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if prog.endswith(".py"):
        prog = prog[:-3]
    return prog or "python-cli"


def init_cli(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    mode: str | None = None,
    log_level: int | str | None = None,
    export_timeout: float | None = None,
    spool_dir: str | None = None,
    disabled: bool | None = None,
    report_keyboard_interrupt: bool = False,
    ignore_exit_codes: Sequence[int] = (2,),
) -> CliRun | None:
    """Start recording this process as one CLI run; unhandled exceptions are reported at exit.

    Returns the run (idempotent), or None when disabled (OTEL_SDK_DISABLED=true) or on an
    internal failure. Usage errors (exit code 2, as argparse and click use) are not reported.
    """
    global _active
    if _active is not None:
        return _active
    try:
        settings = _config.resolve(
            source="cli",
            default_service_name=_default_service_name(),
            service_name=service_name,
            service_version=service_version,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            disabled=disabled,
            export_timeout=export_timeout,
            spool_dir=spool_dir,
            mode=mode,
            log_level=log_level,
        )
        if settings.disabled:
            return None
        run = CliRun(settings, report_keyboard_interrupt=report_keyboard_interrupt, ignore_exit_codes=ignore_exit_codes)
        _active = run
        run.start()
        return run
    except Exception as exc:
        from ._exceptions import debug

        debug("otel-autoheal: init failed: %r", exc)
        return None
