"""Keep the run's stdlib log records in a small ring buffer, cheaply.

A LogRecord factory is used rather than a handler on the root logger: a root handler would make a
later ``logging.basicConfig()`` in the host silently do nothing and would suppress Python's
"last resort" stderr output. The factory sees every record the host's logger levels let through.
"""

from __future__ import annotations

import sys
from collections import deque

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    import logging
    from typing import Any

__all__ = ["AfterImportHook", "BufferedRecord", "LogBuffer"]

# (time_ns, levelno, levelname, logger name, message, exception or None, pathname, lineno)
BufferedRecord = tuple[int, int, str, str, str, "BaseException | None", str, int]

_OWN_LOGGER = "autoheal_instrumentation"


# The factory is installed once per process and appends to whichever buffer is current, so
# several runs in one process (tests, nested entry points) do not stack factories.
_current: LogBuffer | None = None
_factory_state = {"installed": False}


class LogBuffer:
    """Bounded buffer fed by a chained LogRecord factory."""

    def __init__(self, level: int, capacity: int) -> None:
        self.level = level
        self.records: deque[BufferedRecord] = deque(maxlen=capacity)

    def install(self) -> None:
        """Become the current buffer; capture starts now, or when the host imports logging."""
        global _current
        _current = self
        if _factory_state["installed"]:
            return
        _factory_state["installed"] = True
        if "logging" in sys.modules:
            _install_factory()
        else:
            sys.meta_path.insert(0, AfterImportHook("logging", _install_factory))

    def snapshot(self) -> list[BufferedRecord]:
        return list(self.records)


def _install_factory() -> None:
    import logging

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        buffer = _current
        if buffer is None:
            return record
        try:
            if record.levelno >= buffer.level and not record.name.startswith(_OWN_LOGGER):
                try:
                    message = record.getMessage()
                except Exception:
                    message = str(record.msg)
                exc = record.exc_info[1] if record.exc_info else None
                buffer.records.append(
                    (
                        int(record.created * 1e9),
                        record.levelno,
                        record.levelname,
                        record.name,
                        message,
                        exc,
                        record.pathname,
                        record.lineno or 0,
                    )
                )
        except Exception:  # a logging call in the host must never fail because of us
            pass
        return record

    logging.setLogRecordFactory(factory)


class AfterImportHook:
    """Meta-path finder that runs a callback right after module ``name`` is first imported.

    Lets a CLI that never logs (or never starts a thread) skip importing logging (~10 ms) or
    threading while still instrumenting one that imports it after instrumentation started.
    """

    def __init__(self, name: str, callback: Any) -> None:
        self._name = name
        self._callback = callback

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self._name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module
        callback = self._callback

        def exec_module(module: Any) -> None:
            original(module)
            try:
                callback()
            except Exception:
                pass

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
