"""How a stdlib log record is described in OTLP, the same by the CLI and MCP integrations."""

from __future__ import annotations

__all__ = ["severity", "source_attributes"]

# stdlib level (rounded down to a multiple of 10) -> OTLP SeverityNumber and text.
_SEVERITY = {10: (5, "DEBUG"), 20: (9, "INFO"), 30: (13, "WARN"), 40: (17, "ERROR"), 50: (21, "FATAL")}
_INFO = 9


def severity(levelno: int, levelname: str) -> tuple[int, str]:
    """OTLP severity number and text of a stdlib level; a custom level counts as INFO under its own name."""
    return _SEVERITY.get(levelno - levelno % 10, (_INFO, levelname))


def source_attributes(logger: str, pathname: str, lineno: int) -> dict[str, str | int]:
    """The logger and source position of a record (``logger.name``, ``code.file.path``, ``code.line.number``)."""
    return {"logger.name": logger, "code.file.path": pathname, "code.line.number": lineno}
