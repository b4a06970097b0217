"""``SpanExporter`` and ``LogRecordExporter`` that feed an in-process :class:`AutohealEngine`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_autoheal.exporters._engine import AutohealEngine
from otel_autoheal.sinks.base import Sink

__all__ = ["AutohealLogExporter", "AutohealSpanExporter"]

log = logging.getLogger("otel_autoheal.exporters")


class _EngineUser:
    """Finds or creates the engine without ever raising into the host application."""

    _signal = ""

    def __init__(
        self,
        engine: AutohealEngine | None,
        state_dir: str | os.PathLike[str] | None,
        trace_wait: float | None,
        queue_size: int | None,
        config_file: str | os.PathLike[str] | None,
        sink: Sink | None,
    ) -> None:
        self._engine: AutohealEngine | None = None
        self._shutdown = False
        try:
            if engine is None:
                engine = AutohealEngine.shared(state_dir, trace_wait=trace_wait, queue_size=queue_size,
                                               config_file=config_file, sink=sink)
            self._engine = engine.acquire()
        except Exception as exc:  # a broken setup must not stop the application or its other exporters
            log.error("otel-autoheal %s exporter is disabled: %s", self._signal, exc)

    @property
    def engine(self) -> AutohealEngine | None:
        """The engine this exporter feeds (``None`` when it could not be set up)."""
        engine = self._engine
        if engine is not None and not self._shutdown:
            engine = self._engine = engine.current()
        return engine

    def _submit(self, batch: Sequence[Any]) -> bool:
        if self._shutdown:
            return False
        try:
            engine = self.engine
            if engine is None:
                return False
            if self._signal == "span":
                return engine.submit_spans(batch)
            return engine.submit_logs(batch)
        except Exception:  # never raise into the SDK's export path
            log.exception("otel-autoheal %s exporter failed", self._signal)
            return False

    def _shutdown_engine(self, timeout_millis: float | None) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        engine = self._engine
        if engine is None:
            return
        try:
            engine.release(None if timeout_millis is None else timeout_millis / 1000)
        except Exception:
            log.exception("otel-autoheal %s exporter failed to shut down", self._signal)

    def _force_flush(self, timeout_millis: int) -> bool:
        engine = self.engine
        if engine is None or self._shutdown:
            return True
        try:
            return engine.force_flush(timeout_millis / 1000)
        except Exception:
            log.exception("otel-autoheal %s exporter failed to flush", self._signal)
            return False


class AutohealSpanExporter(_EngineUser, SpanExporter):
    """Files issues from the application's own spans, in its own process.

    Add it next to the exporter you already have::

        provider.add_span_processor(BatchSpanProcessor(AutohealSpanExporter()))

    or set ``OTEL_TRACES_EXPORTER=otlp,autoheal``. Give the same ``engine`` (or the same
    ``state_dir``) to :class:`AutohealLogExporter` so that log lines join their traces.
    ``export()`` only queues (bounded by ``queue_size``) and never raises.
    """

    _signal = "span"

    def __init__(
        self,
        engine: AutohealEngine | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        trace_wait: float | None = None,
        queue_size: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
        sink: Sink | None = None,
    ) -> None:
        _EngineUser.__init__(self, engine, state_dir, trace_wait, queue_size, config_file, sink)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self._submit(spans) else SpanExportResult.FAILURE

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Release the engine; the last exporter to shut down flushes it within the timeout
        (default ``AutohealEngine.shutdown_timeout``, 10 s)."""
        self._shutdown_engine(timeout_millis)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._force_flush(timeout_millis)


class AutohealLogExporter(_EngineUser, LogRecordExporter):
    """Feeds the application's log records to the engine its :class:`AutohealSpanExporter` uses.

    ``provider.add_log_record_processor(BatchLogRecordProcessor(AutohealLogExporter()))`` or
    ``OTEL_LOGS_EXPORTER=otlp,autoheal``. Exception log records become issues on their own;
    other records are shown as the lines leading up to an error of the same trace.
    """

    _signal = "log"

    def __init__(
        self,
        engine: AutohealEngine | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        trace_wait: float | None = None,
        queue_size: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
        sink: Sink | None = None,
    ) -> None:
        _EngineUser.__init__(self, engine, state_dir, trace_wait, queue_size, config_file, sink)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS if self._submit(batch) else LogRecordExportResult.FAILURE

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Release the engine; the last exporter to shut down flushes it within the timeout."""
        self._shutdown_engine(timeout_millis)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._force_flush(timeout_millis)
