"""Exception helpers shared by the CLI and MCP integrations: one way to describe an exception.

:func:`exception_attributes` is the one place an exception becomes OTLP data
(``exception.type``/``.message``/``.stacktrace``, scrubbed); both integrations call it.
Imported at CLI start, so it imports nothing at module level: traceback and the scrubber load
when an exception is described.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MAX_STATUS", "debug", "exception_attributes", "exception_type_name", "mark_seen", "seen", "summary"]

#: Longest span status description sent (a one-line summary; the stack is in the event).
MAX_STATUS = 1024
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SEEN = "__autoheal_seen__"


def debug(msg: str, *args: object) -> None:
    """Log one of our own failures at debug level; never raises, never imports logging."""
    logging = sys.modules.get("logging")
    if logging is not None:
        try:
            logging.getLogger("autoheal_instrumentation").debug(msg, *args)
        except Exception:
            pass


def exception_type_name(exc: BaseException) -> str:
    """``module.Qualname``, or the bare qualname for builtins (``KeyError``)."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__builtin__", None):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _without_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the leading frames of our wrappers so the stack starts in the host's code."""
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return tb


def exception_attributes(exc: BaseException, *, skip_own_frames: bool = False) -> dict[str, str]:
    """The scrubbed ``exception.*`` attributes of ``exc``, with its full chained traceback.

    ``skip_own_frames`` drops the leading frames of our wrappers (the CLI wraps the host's ``main``).
    """
    import traceback

    from ._scrub import scrub_text

    tb = _without_own_frames(exc.__traceback__) if skip_own_frames else exc.__traceback__
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        stack = ""
    return {
        "exception.type": exception_type_name(exc),
        "exception.message": scrub_text(str(exc)),
        "exception.stacktrace": scrub_text(stack),
    }


def summary(exc: BaseException, message: str) -> str:
    """``Qualname: message``: the span status description (cut at MAX_STATUS) and error log body."""
    return f"{type(exc).__qualname__}: {message}"


def seen(exc: BaseException) -> bool:
    """Whether ``exc`` was already reported (by this run, a tool call or the logging bridge)."""
    return bool(getattr(exc, _SEEN, False))


def mark_seen(exc: BaseException | None, *, with_causes: bool = False) -> None:
    """Mark ``exc`` (and, with ``with_causes``, the exceptions it chains to) as reported."""
    while exc is not None:
        try:
            setattr(exc, _SEEN, True)
        except Exception:  # an exception type with __slots__ or a read-only __setattr__
            return
        if not with_causes:
            return
        exc = exc.__cause__ or exc.__context__
