"""Trace assembly: hold spans and logs per trace id until ``trace_wait`` of silence, bounded.

Contract:
- ``add_spans``/``add_logs`` are called from receiver threads; they only take a lock and append.
- A trace is handed to ``on_trace`` (from the assembler's own thread) once no data arrived for
  it during ``trace_wait`` seconds, or early when ``max_traces`` forces an eviction. Traces with
  no error are dropped at that point without reaching ``on_trace``.
- Memory is bounded by ``max_traces`` x ``max_records_per_trace`` plus the trace-less log ring.
  Records beyond the per-trace bound are dropped, except error spans and exception logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otel_autoheal.extract import TraceData
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import STATUS_CODE_ERROR, LogData, SpanData, attributes_to_dict, error_span, light_span

__all__ = ["Assembler", "Overloaded"]

log = logging.getLogger("otel_autoheal.assemble")

_ZERO_TRACE = bytes(16)

#: Trace-less log records kept for the service.instance.id fallback.
ORPHAN_LOG_RING = 5_000


class Overloaded(Exception):
    """The pipeline is behind: receivers should answer with a retryable status."""


@dataclass
class _Pending:
    data: TraceData
    last_update: float
    has_error: bool = False
    #: span id → parent span id (raw bytes) of spans that did not fail.
    links: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return len(self.links) + len(self.data.spans) + len(self.data.logs)


def _finish(pending: _Pending) -> TraceData:
    """Materialise the parent links of spans that did not fail, for root-cause folding."""
    spans = pending.data.spans
    for span_id, parent in pending.links.items():
        light = light_span(pending.data.trace_id, span_id, parent)
        spans.setdefault(light.span_id, light)
    pending.links = {}
    return pending.data


class Assembler:
    """Collects spans and logs per trace and releases finished traces to ``on_trace``."""

    def __init__(
        self,
        on_trace: Callable[[TraceData, list[LogData]], object],
        trace_wait: float,
        max_traces: int,
        max_records_per_trace: int,
        max_pending: int,
        metrics: Metrics,
    ) -> None:
        self._on_trace = on_trace
        self._trace_wait = trace_wait
        self._max_traces = max_traces
        self._max_records = max_records_per_trace
        self._max_pending = max_pending
        self._metrics = metrics
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, _Pending] = OrderedDict()
        self._orphan_logs: deque[LogData] = deque(maxlen=ORPHAN_LOG_RING)
        self._orphan_seq = 0
        self._ready: deque[TraceData] = deque()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="autoheal-assembler", daemon=True)
        self._warned_evict = 0.0
        self._warned_drop = 0.0
        metrics.gauge("autoheal_traces_held", "Traces currently held by the assembler.", lambda: len(self._traces))
        metrics.gauge("autoheal_traces_ready", "Finished traces waiting for the pipeline.", lambda: len(self._ready))

    def start(self) -> None:
        self._thread.start()

    # -- intake ---------------------------------------------------------------------------
    def check_capacity(self) -> None:
        if len(self._ready) >= self._max_pending:
            raise Overloaded(f"{len(self._ready)} traces are waiting for the pipeline (max_pending_traces)")

    def add_trace_request(self, request: Any, may_fail: bool = True) -> tuple[int, int, list[SpanData]]:
        """Take the spans of an ``ExportTraceServiceRequest``; returns ``(accepted, rejected, failed spans)``.

        This is the hot path of the service: a span that did not fail costs one dict entry
        (its parent link, as bytes); only failed spans are converted to ``SpanData``.
        ``may_fail=False`` promises that no span has an event or an ERROR status (the caller
        checked the encoded bytes), which skips the per-span checks.
        """
        now = time.monotonic()
        accepted = rejected = 0
        with self._lock:
            last_raw: bytes = b""
            pending: _Pending | None = None
            links: dict[bytes, bytes] = {}
            touched: list[_Pending] = []
            failed: list[SpanData] = []
            for resource_spans in request.resource_spans:
                resource: dict[str, Any] | None = None
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        raw = span.trace_id
                        if raw != last_raw or pending is None:
                            if len(raw) != 16 or raw == _ZERO_TRACE:
                                rejected += 1
                                continue
                            last_raw = raw
                            pending = self._pending(raw.hex(), now)
                            links = pending.links
                            touched.append(pending)
                        if may_fail and (span.events or span.status.code == STATUS_CODE_ERROR):
                            if resource is None:
                                resource = attributes_to_dict(resource_spans.resource.attributes)
                            data = error_span(span, pending.data.trace_id, resource)
                            if data is not None:
                                pending.has_error = True
                                pending.data.spans[data.span_id] = data
                                failed.append(data)
                                continue
                        links[span.span_id] = span.parent_span_id
                    accepted += len(scope_spans.spans)
            accepted -= rejected
            # The per-trace bound is enforced once per request rather than per span: cheaper,
            # and a request holds a bounded number of spans anyway (max_request_bytes).
            for pending in touched:
                self._enforce_bound(pending)
            self._evict_if_needed()
        return accepted, rejected, failed

    def _enforce_bound(self, pending: _Pending) -> None:
        """Drop the newest parent links of a trace beyond ``max_records_per_trace``; failed spans stay."""
        excess = pending.records - self._max_records
        if excess <= 0:
            return
        victims = list(pending.links)[-excess:]
        for key in victims:
            del pending.links[key]
        self._dropped(len(victims))

    def add_spans(self, spans: Iterable[SpanData]) -> int:
        """Take already-decoded spans (used by in-process exporters and tests)."""
        now = time.monotonic()
        count = 0
        with self._lock:
            for span in spans:
                count += 1
                pending = self._pending(span.trace_id, now)
                if pending.records >= self._max_records and not span.is_error:
                    self._dropped()
                    continue
                pending.data.spans[span.span_id] = span
                if span.is_error:
                    pending.has_error = True
            self._evict_if_needed()
        return count

    def add_span_links(self, links: Iterable[tuple[str, bytes, bytes]]) -> int:
        """Take spans that did not fail as ``(trace id hex, span id, parent span id)`` (raw ids).

        The in-process exporters' counterpart of the hot path in ``add_trace_request``: only the
        parent link is kept, and it becomes a ``SpanData`` only if the trace turns out to have failed.
        """
        now = time.monotonic()
        count = 0
        with self._lock:
            last_trace = ""
            pending: _Pending | None = None
            for trace_id, span_id, parent_span_id in links:
                count += 1
                if trace_id != last_trace or pending is None:
                    last_trace = trace_id
                    pending = self._pending(trace_id, now)
                if pending.records >= self._max_records:
                    self._dropped()
                    continue
                pending.links[span_id] = parent_span_id
            self._evict_if_needed()
        return count

    def add_logs(self, logs: Iterable[LogData]) -> int:
        now = time.monotonic()
        count = 0
        with self._lock:
            for record in logs:
                count += 1
                if not record.trace_id:
                    if record.has_exception:
                        self._orphan_seq += 1
                        key = f"orphan-{self._orphan_seq}"
                        pending = self._pending(key, now)
                        pending.data.logs.append(record)
                        pending.has_error = True
                    else:
                        self._orphan_logs.append(record)
                    continue
                pending = self._pending(record.trace_id, now)
                if pending.records >= self._max_records and not record.has_exception:
                    self._dropped()
                    continue
                pending.data.logs.append(record)
                if record.has_exception:
                    pending.has_error = True
            self._evict_if_needed()
        return count

    def _pending(self, trace_id: str, now: float) -> _Pending:
        pending = self._traces.get(trace_id)
        if pending is None:
            pending = _Pending(TraceData(trace_id if not trace_id.startswith("orphan-") else ""), now)
            self._traces[trace_id] = pending
        else:
            pending.last_update = now
            self._traces.move_to_end(trace_id)
        return pending

    def _dropped(self, count: int = 1) -> None:
        self._metrics.inc("autoheal_records_dropped_total", count)
        now = time.monotonic()
        if now - self._warned_drop > 60:
            self._warned_drop = now
            log.warning("a trace exceeded max_records_per_trace=%d; ordinary records are dropped (errors kept). "
                        "Raise max_records_per_trace (AUTOHEAL_MAX_RECORDS_PER_TRACE) to keep them.", self._max_records)

    def _evict_if_needed(self) -> None:
        while len(self._traces) > self._max_traces:
            _, pending = self._traces.popitem(last=False)
            self._metrics.inc("autoheal_traces_evicted_total")
            if pending.has_error:
                self._ready.append(_finish(pending))
                self._wake.notify()
            now = time.monotonic()
            if now - self._warned_evict > 60:
                self._warned_evict = now
                log.warning("more than max_traces=%d traces in flight; the oldest are processed early "
                            "(possibly incomplete). Raise max_traces (AUTOHEAL_MAX_TRACES) or lower trace_wait.",
                            self._max_traces)

    # -- release --------------------------------------------------------------------------
    def _collect_expired(self, now: float) -> None:
        while self._traces:
            trace_id, pending = next(iter(self._traces.items()))
            if now - pending.last_update < self._trace_wait:
                break
            del self._traces[trace_id]
            if pending.has_error:
                self._ready.append(_finish(pending))

    def _run(self) -> None:
        tick = min(0.2, self._trace_wait / 4)
        while True:
            with self._lock:
                if not self._ready and not self._stop:
                    self._wake.wait(timeout=tick)
                self._collect_expired(time.monotonic())
                if self._stop and not self._ready:
                    return
                batch = list(self._ready)
                self._ready.clear()
                orphans = list(self._orphan_logs)
                self._busy = bool(batch)
            for trace in batch:
                try:
                    self._on_trace(trace, orphans)
                except Exception:  # one bad trace must not stop the service
                    self._metrics.inc("autoheal_pipeline_errors_total")
                    log.exception("failed to process trace %s", trace.trace_id or "(no trace id)")
            with self._lock:
                self._busy = False

    def flush(self, timeout: float = 30.0) -> bool:
        """Release every held trace now and wait until the pipeline has processed them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            for pending in self._traces.values():
                if pending.has_error:
                    self._ready.append(_finish(pending))
            self._traces.clear()
            self._wake.notify()
        while time.monotonic() < deadline:
            with self._lock:
                if not self._ready and not self._busy:
                    return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Process what is held, then stop the thread (idempotent)."""
        if self._thread.is_alive():
            self.flush(timeout)
            with self._lock:
                self._stop = True
                self._wake.notify()
            self._thread.join(timeout)
