"""The service's own metrics in the Prometheus text format (served at /metrics), on prometheus-client.

Each ``Metrics`` owns a ``CollectorRegistry`` (never the process-global one: several services or
in-process engines can live in one process, e.g. tests and in-process exporters) with the client's
standard ``process_*``, ``python_gc_*`` and ``python_info`` collectors.

- Counters are kept in one dict under one lock and exposed through a custom collector: callers
  pass label sets freely (``inc(name, n, reason="x")``), a counter listed in ``_HELP`` shows 0
  before its first increment, and no ``_created`` series is added.
- Gauges are read from callbacks at scrape time. A callback must be cheap (a ``COUNT(*)`` on a
  read connection or the length of a container, never whole rows, never the store's write lock):
  every scraper pays it on every scrape. A failing callback drops its gauge from that scrape only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger("otel_autoheal.metrics")

#: The media type of ``Metrics.render()``'s text.
CONTENT_TYPE = CONTENT_TYPE_LATEST

_HELP = {
    "autoheal_spans_received_total": "Spans received over OTLP.",
    "autoheal_logs_received_total": "Log records received over OTLP.",
    "autoheal_requests_rejected_total": "OTLP requests refused (bad input, auth, size, overload).",
    "autoheal_exceptions_seen_total": "Distinct exceptions extracted from finished traces.",
    "autoheal_occurrences_total": "Grouped occurrences recorded (one per root-cause incident).",
    "autoheal_duplicates_total": "Occurrences delivered again (retries, journal replays) and recognised as already counted.",
    "autoheal_issues_filed_total": "New groups (issues) created.",
    "autoheal_traces_evicted_total": "Traces processed early because max_traces was reached (raise max_traces).",
    "autoheal_records_dropped_total": "Records dropped because max_records_per_trace was reached.",
    "autoheal_trace_bytes_dropped_total": "Ordinary records (spans that did not fail, logs) dropped because their trace reached max_trace_bytes (raise max_trace_bytes).",
    "autoheal_trace_bytes_truncated_total": "Error records kept with long values truncated because their trace reached max_trace_bytes.",
    "autoheal_traces_split_total": "Traces processed in parts because their errors alone reached max_trace_bytes (later parts merged as late data).",
    "autoheal_traces_evicted_bytes_total": "Traces processed early because the bytes held reached max_held_bytes (raise max_held_bytes).",
    "autoheal_traces_forgotten_total": "Traces without an error forgotten before their trace_wait was over because "
                                       "the bytes held reached max_held_bytes (raise max_held_bytes).",
    "autoheal_late_traces_total": "Traces that received data after they were processed (merged, not double-counted).",
    "autoheal_journal_replayed_total": "Failed spans and exception logs replayed from the intake journal after an unclean stop.",
    "autoheal_journal_unavailable_total": "OTLP requests refused (503/UNAVAILABLE) because their errors could not be "
                                          "journalled within journal_timeout.",
    "autoheal_pipeline_errors_total": "Internal errors while processing a trace (see the service log).",
}

_Labels = tuple[tuple[str, str], ...]


class _Counters:
    """Collector over the counter dict (``Metrics`` holds the lock and the values)."""

    def __init__(self, lock: threading.Lock, values: dict[tuple[str, _Labels], float]) -> None:
        self._lock = lock
        self._values = values

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            values = dict(self._values)
        for name in sorted({n for n, _ in values} | set(_HELP)):
            base = name.removesuffix("_total")
            family = Metric(base, _HELP.get(name, name), "counter")
            series = [(labels, v) for (n, labels), v in values.items() if n == name] or [((), 0.0)]
            for labels, value in sorted(series):
                family.add_sample(base + "_total", dict(labels), value)
            yield family


class _Gauges:
    """Collector calling each gauge's callback once per scrape."""

    def __init__(self) -> None:
        self.readers: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterator[Metric]:
        for name, (help_text, read) in sorted(self.readers.items()):
            try:
                value = float(read())
            except Exception:  # a failing gauge must not break the scrape
                log.debug("gauge %s failed", name, exc_info=True)
                continue
            yield GaugeMetricFamily(name, help_text, value=value)


class Metrics:
    """Thread-safe counters plus gauges read from callbacks at scrape time, on a private registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, _Labels], float] = {}
        self._gauges = _Gauges()
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_Counters(self._lock, self._counters))
        self.registry.register(self._gauges)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            if labels:
                return self._counters.get((name, tuple(sorted(labels.items()))), 0)
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register (or replace) gauge ``name``; ``read`` must be cheap and never take the write lock."""
        self._gauges.readers[name] = (help_text, read)

    def render(self) -> str:
        """Every metric in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry).decode()
