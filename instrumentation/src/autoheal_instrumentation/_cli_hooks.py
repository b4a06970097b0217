"""Chained exception hooks (``sys.excepthook``, ``threading.excepthook``), as sentry-python does.

Each hook reports the exception, then always calls the hook that was installed before it, with
the same arguments: the host's own hook (or Python's default output) still runs, and a failure
of ours never reaches the host. Installed once per process; interactive shells are left alone.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Report = Callable[[BaseException], None]

__all__ = ["install"]

_installed = False
_previous_hook: Callable[..., Any] | None = None
_previous_thread_hook: Callable[..., Any] | None = None
_report: Report | None = None
_report_thread: Report | None = None


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    try:
        if _report is not None and exc is not None:
            _report(exc)
    except Exception:
        pass
    finally:
        previous = _previous_hook if _previous_hook is not None else sys.__excepthook__
        previous(exc_type, exc, tb)


def _thread_excepthook(args: Any) -> None:
    """``threading.excepthook``: a worker thread died with an exception; the previous hook still runs."""
    try:
        if _report_thread is not None and args.exc_value is not None:
            _report_thread(args.exc_value)
    except Exception:
        pass
    finally:
        import threading

        previous = _previous_thread_hook if _previous_thread_hook is not None else threading.__excepthook__
        previous(args)


def _is_interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


def install(report: Report, report_thread: Report) -> None:
    """Report unhandled exceptions of the main thread to ``report``, of other threads to ``report_thread``."""
    global _installed, _previous_hook, _report, _report_thread
    if _installed or _is_interactive():
        return
    _installed = True
    _report, _report_thread = report, report_thread
    _previous_hook = sys.excepthook
    sys.excepthook = _excepthook
    # Importing threading here would cost start-up time: hook it now if the app already has it,
    # else right after the app (or logging, which uses it) imports it.
    if "threading" in sys.modules:
        _install_thread_hook()
    else:
        from ._logbuffer import AfterImportHook

        sys.meta_path.insert(0, AfterImportHook("threading", _install_thread_hook))


def _install_thread_hook() -> None:
    global _previous_thread_hook
    import threading

    if threading.excepthook is not _thread_excepthook:
        _previous_thread_hook = threading.excepthook
        threading.excepthook = _thread_excepthook
