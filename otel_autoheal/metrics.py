"""The service's own metrics in the Prometheus text format (served at /metrics)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Metrics"]

_HELP = {
    "autoheal_spans_received_total": "Spans received over OTLP.",
    "autoheal_logs_received_total": "Log records received over OTLP.",
    "autoheal_requests_rejected_total": "OTLP requests refused (bad input, auth, size, overload).",
    "autoheal_exceptions_seen_total": "Distinct exceptions extracted from finished traces.",
    "autoheal_occurrences_total": "Grouped occurrences recorded (one per root-cause incident).",
    "autoheal_issues_filed_total": "New groups (issues) created.",
    "autoheal_traces_evicted_total": "Traces processed early because max_traces was reached (raise max_traces).",
    "autoheal_records_dropped_total": "Records dropped because max_records_per_trace was reached.",
    "autoheal_trace_bytes_dropped_total": "Ordinary records (spans that did not fail, logs) dropped because their trace reached max_trace_bytes (raise max_trace_bytes).",
    "autoheal_trace_bytes_truncated_total": "Error records kept with long values truncated because their trace reached max_trace_bytes.",
    "autoheal_traces_split_total": "Traces processed in parts because their errors alone reached max_trace_bytes (later parts merged as late data).",
    "autoheal_traces_evicted_bytes_total": "Traces processed early because the bytes held reached max_held_bytes (raise max_held_bytes).",
    "autoheal_late_traces_total": "Traces that received data after they were processed (merged, not double-counted).",
    "autoheal_journal_replayed_total": "Failed spans and exception logs replayed from the intake journal after an unclean stop.",
    "autoheal_pipeline_errors_total": "Internal errors while processing a trace (see the service log).",
}


class Metrics:
    """Thread-safe counters plus gauges read from callbacks at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

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
        self._gauges[name] = (help_text, read)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
        names = sorted({n for n, _ in counters} | set(_HELP))
        for name in names:
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            series = [(labels, v) for (n, labels), v in counters.items() if n == name] or [((), 0)]
            for labels, v in series:
                label_text = ",".join(f'{k}="{val}"' for k, val in labels)
                lines.append(f"{name}{{{label_text}}} {v:g}" if label_text else f"{name} {v:g}")
        for name, (help_text, read) in sorted(self._gauges.items()):
            try:
                value = float(read())
            except Exception:  # a failing gauge must not break the scrape
                continue
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
