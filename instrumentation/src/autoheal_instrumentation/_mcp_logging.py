"""Bridge from stdlib logging to OpenTelemetry log records, carrying the current span context."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber

from ._exceptions import exception_attributes, seen
from ._logfields import severity, source_attributes
from ._scrub import scrub_text

__all__ = ["LoggingBridge"]

# Loggers of telemetry and HTTP machinery: bridging them would feed our own export traffic back in.
_SKIP_LOGGERS = ("opentelemetry", "autoheal_instrumentation", "urllib3", "httpx", "httpcore")


class LoggingBridge(logging.Handler):
    """stdlib logging -> OTel log records with the current span context.

    Own small handler: the SDK's LoggingHandler is deprecated and its replacement lives in an
    extra package. An exception we already recorded for a tool is not sent a second time.
    """

    def __init__(self, provider: Any, level: int) -> None:
        super().__init__(level=level)
        self._provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_SKIP_LOGGERS):
            return
        try:
            attributes: dict[str, Any] = source_attributes(record.name, record.pathname, record.lineno)
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and not seen(exc):
                attributes.update(exception_attributes(exc))
            number, _ = severity(record.levelno, record.levelname)
            self._provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                context=otel_context.get_current(),
                severity_number=SeverityNumber(number),
                severity_text=record.levelname,
                body=scrub_text(record.getMessage()),
                attributes=attributes,
            )
        except Exception:
            pass  # never let telemetry break the host's logging

    def flush(self) -> None:
        pass
