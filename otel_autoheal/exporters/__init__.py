"""Attach otel-autoheal to telemetry that already exists, inside the application's process.

``AutohealSpanExporter`` and ``AutohealLogExporter`` are ordinary OTel SDK exporters: add them
next to the exporters you already have (or set ``OTEL_TRACES_EXPORTER=otlp,autoheal`` and
``OTEL_LOGS_EXPORTER=otlp,autoheal``). They run the same pipeline as ``otel-autoheal serve``
(assemble → extract → scrub → group → render → store → sink) on a background thread, sharing
one :class:`AutohealEngine` per state directory so that spans and logs of one trace meet.

Requires ``opentelemetry-sdk``.
"""

from otel_autoheal.exporters._engine import (
    DEFAULT_QUEUE_SIZE,
    ENV_EXPORTER_QUEUE_SIZE,
    AutohealEngine,
    default_trace_wait,
)
from otel_autoheal.exporters._exporters import AutohealLogExporter, AutohealSpanExporter

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "ENV_EXPORTER_QUEUE_SIZE",
    "AutohealEngine",
    "AutohealLogExporter",
    "AutohealSpanExporter",
    "default_trace_wait",
]
