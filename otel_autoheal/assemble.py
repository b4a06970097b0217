# Over 400 lines on purpose: the quiet index, the traces being assembled and the byte accounting share one lock
# and one set of invariants (every byte held is counted once, in one place); split, each half would reach into the other.
"""Trace assembly: hold spans and logs per trace id until ``trace_wait`` of silence, bounded.

Contract:
- ``add_spans``/``add_logs`` are called from receiver threads; they only take a lock and append.
- A trace without an error (so far) only has an entry in the quiet index (``_Generation``): its
  raw parent links and its log records undecoded; the index is forgotten a generation at a time
  once silent for ``trace_wait``. Its first error moves it into full assembly (``_promote``).
- A failing trace is handed to ``on_trace`` (from the assembler's own thread) once no data
  arrived for it during ``trace_wait`` seconds, or early when ``max_traces`` (which counts
  failing traces only) forces an eviction.
- Memory is bounded in count (``max_traces``, ``max_records_per_trace``) and in estimated bytes
  (``sizes.py``): a trace holds at most ``max_trace_bytes`` (ordinary records beyond it are
  dropped; errors are kept with their long values truncated, and a trace whose errors alone
  reach the bound is processed at once, later data merging as late data); everything held —
  the quiet index, traces waiting, finished traces not yet processed, the trace-less log ring and
  the pipeline's recent-trace cache (``other_held``) — stays within ``max_held_bytes``, the oldest
  quiet generations being forgotten and then the oldest failing traces processed early beyond it.
  When even finished traces fill it, receivers are told to retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, TypeVar

from otel_autoheal.config import Config
from otel_autoheal.errors import Overloaded
from otel_autoheal.metrics import Metrics
from otel_autoheal.model import TraceData
from otel_autoheal.otlp import (
    SPAN_RECORD_BYTES,
    LogData,
    RawScope,
    SpanData,
    TraceSplit,
    light_span,
    run_links,
)
from otel_autoheal.sizes import (
    LIGHT_SPAN_BYTES,
    LINK_BYTES,
    log_bytes,
    span_bytes,
    truncate_log,
    truncate_span,
    value_bytes,
)

__all__ = ["Assembler"]

log = logging.getLogger("otel_autoheal.assemble")

_ZERO_TRACE = bytes(16)

#: Trace-less log records kept for the service.instance.id fallback.
ORPHAN_LOG_RING = 5_000
#: Share of ``max_held_bytes`` the trace-less log ring may use (1/8).
ORPHAN_SHARE = 8
#: A trace-less log larger than this is truncated before it enters the ring: only its first
#: 4,000 characters are ever shown.
ORPHAN_LOG_BYTES = 8_192


#: What a trace without an error costs in the quiet index besides its links and logs: its raw id,
#: its entry and links dict, a slot in its generation.
QUIET_TRACE_BYTES = 250
#: A run of span records of a trace without an error (``split_traces``), besides its bytes:
#: the ``bytes`` object's header and a slot in the trace's list of runs.
QUIET_RUN_BYTES = 48
#: The logs of a quiet trace that has none (most traces): shared, so it costs no list.
_NO_LOGS: list[Any] = []
#: Generations of the quiet index per ``trace_wait``: a trace without an error is forgotten between
#: ``trace_wait`` and ``trace_wait`` * (1 + 1/this) after its last data.
QUIET_GENERATIONS = 4

_Record = TypeVar("_Record", SpanData, LogData)



def _raw_id(trace_id: str) -> bytes:
    """The raw bytes of a hex trace id (the quiet index's key); any other string keys only itself."""
    try:
        return bytes.fromhex(trace_id)
    except ValueError:
        return trace_id.encode()

def _quiet_size(run: bytes) -> int:
    """What a quiet trace held as its one run costs."""
    return QUIET_TRACE_BYTES + QUIET_RUN_BYTES + len(run)


def _quiet_entry(run: bytes, raw: bytes) -> list[Any]:
    """The list form of a quiet trace held as its one run (counted as ``_quiet_size``)."""
    return [[run], _NO_LOGS, len(run) + QUIET_RUN_BYTES, _quiet_size(run), len(run) // SPAN_RECORD_BYTES, 0, raw]


def _prepend_quiet(entry: list[Any], earlier: list[Any]) -> None:
    """Put ``earlier`` (the list form of the same trace's entry in an older generation) in front of
    ``entry``: runs, logs, charged bytes and counts; the caller recounts ``entry[3]``."""
    entry[0][:0] = earlier[0]
    if earlier[1]:
        entry[1] = [*earlier[1], *entry[1]]
    entry[2] += earlier[2]
    entry[4] += earlier[4]
    entry[5] += earlier[5]


class _Generation:
    """Traces without an error that received data in one slice of time, by raw trace id.

    Each entry is ``[runs, logs, charged, counted, links, log records, raw trace id]``: the runs of
    span records (``split_traces``: span id and parent span id, ``SPAN_RECORD_BYTES`` a span, the
    trace id being the key) of its spans that did not fail, as they came; its log records still undecoded, flat (``RawScope``, first index in it,
    records, ``RawScope``…: a tuple per record made the garbage collector's passes cost more than
    the index itself); the bytes charged for both; what the entry adds to the generation's bytes
    as last counted; how many links and log records it holds; its key. A trace whose spans came in one run
    and that has no logs (most traces) is just that run, a ``bytes`` (``_quiet_size``): no list
    for the garbage collector to track, nothing to free but the run when it is forgotten.
    """

    __slots__ = ("bytes", "last", "started", "traces")

    def __init__(self, now: float) -> None:
        self.started = now
        self.last = now
        self.bytes = 0
        self.traces: dict[bytes, Any] = {}


@dataclass
class _Pending:
    data: TraceData
    last_update: float
    has_error: bool = False
    #: span id → parent span id (raw bytes) of spans that did not fail.
    links: dict[bytes, bytes] = field(default_factory=dict)
    #: Estimated bytes of the failed spans, logs and resources held (links are counted apart).
    record_bytes: int = 0
    #: What this trace adds to the assembler's held bytes, as last counted.
    counted: int = 0
    #: Its key in the assembler (the trace id, or ``orphan-N`` for a trace-less exception log).
    key: str = ""

    @property
    def records(self) -> int:
        return len(self.links) + len(self.data.spans) + len(self.data.logs)

    @property
    def bytes(self) -> int:
        return self.record_bytes + len(self.links) * LINK_BYTES


def _finish(pending: _Pending) -> tuple[TraceData, int]:
    """Materialise the parent links of spans that did not fail, for root-cause folding.

    Returns the trace and its estimated bytes as a finished trace (light spans cost more than links).
    """
    spans = pending.data.spans
    size = pending.record_bytes + len(pending.links) * LIGHT_SPAN_BYTES
    for span_id, parent in pending.links.items():
        light = light_span(pending.data.trace_id, span_id, parent)
        spans.setdefault(light.span_id, light)
    pending.links = {}
    return pending.data, size


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
        max_trace_bytes: int = Config.max_trace_bytes,
        max_held_bytes: int = Config.max_held_bytes,
        other_held: Callable[[], int] = lambda: 0,
        on_batch: Callable[[list[TraceData], list[LogData]], object] | None = None,
    ) -> None:
        self._on_trace = on_trace
        #: Takes every trace finished at once in one call instead (``Pipeline.process_batch``).
        self._on_batch = on_batch
        self._trace_wait = trace_wait
        self._max_traces = max_traces
        self._max_records = max_records_per_trace
        self._max_pending = max_pending
        self._max_trace_bytes = max_trace_bytes
        self._max_held_bytes = max_held_bytes
        self._max_orphan_bytes = max_held_bytes // ORPHAN_SHARE
        #: Bytes held elsewhere that count against ``max_held_bytes`` (the pipeline's recent traces).
        self._other_held = other_held
        self._metrics = metrics
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, _Pending] = OrderedDict()
        self._orphan_logs: deque[tuple[LogData, int]] = deque()
        self._orphan_seq = 0
        self._ready: deque[tuple[TraceData, int]] = deque()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="autoheal-assembler", daemon=True)
        #: Estimated bytes held: traces being assembled, finished traces waiting, trace-less logs.
        self._pending_bytes = 0
        self._ready_bytes = 0
        self._orphan_bytes = 0
        #: Traces without an error (so far), oldest generation first: only their links and raw logs.
        self._gens: deque[_Generation] = deque()
        self._quiet_bytes = 0
        self._slice = max(trace_wait / QUIET_GENERATIONS, 0.01)
        #: A trace without an error has an entry in each generation it received data in. Entries up
        #: to this size are bounded alone: at most QUIET_GENERATIONS + 2 generations are alive, so
        #: their sum stays under ``max_trace_bytes``. An entry past it takes in the trace's entries
        #: in older generations, and ``max_trace_bytes`` bounds the trace as a whole.
        self._quiet_part_bytes = max_trace_bytes // (2 * QUIET_GENERATIONS)
        #: An error was admitted beyond ``max_trace_bytes`` during the current call.
        self._overfull = False
        #: Setting → last time a warning naming it was logged (at most one a minute each).
        self._warned: dict[str, float] = {}
        metrics.gauge("autoheal_traces_held", "Traces currently held by the assembler.", self.traces_held)
        metrics.gauge("autoheal_traces_ready", "Finished traces waiting for the pipeline.", lambda: len(self._ready))
        metrics.gauge("autoheal_held_bytes", "Estimated bytes held: traces being assembled or waiting for the "
                      "pipeline, trace-less logs, the pipeline's recent traces (bounded by max_held_bytes).",
                      self.held_bytes)

    def start(self) -> None:
        self._thread.start()

    def held_bytes(self) -> int:
        """Estimated bytes held against ``max_held_bytes``."""
        return self._pending_bytes + self._quiet_bytes + self._ready_bytes + self._orphan_bytes + self._other_held()

    def assembling(self, raw_trace_id: bytes) -> bool:
        """Whether the trace is held in full (it failed), not in the quiet index; no lock: a hint."""
        return raw_trace_id.hex() in self._traces

    def traces_held(self) -> int:
        """Traces being assembled: with an error, and without one (in the quiet index)."""
        return len(self._traces) + sum(len(gen.traces) for gen in list(self._gens))

    # -- intake ---------------------------------------------------------------------------
    def check_capacity(self) -> None:
        if len(self._ready) >= self._max_pending:
            raise Overloaded(f"{len(self._ready)} traces are waiting for the pipeline (max_pending_traces)")
        behind = self._ready_bytes + self._orphan_bytes + self._other_held()
        if behind >= self._max_held_bytes:
            # Evicting traces being assembled cannot help: what fills the bound is already finished.
            raise Overloaded(f"{behind} bytes of finished traces are waiting for the pipeline (max_held_bytes)")

    def add_trace_request(self, spans: TraceSplit) -> list[SpanData]:
        """Take the spans of a trace export as ``split_traces`` left them; returns the failed spans as held.

        This is the hot path of the service: the spans that did not fail of a trace without an
        error come as runs of their span and parent ids (a few per trace and export), appended to its
        entry in the quiet index as they are; only failed spans are ``SpanData``.
        """
        with self._lock:
            return self._take_spans(spans)

    def try_add_trace_request(self, spans: TraceSplit) -> list[SpanData] | None:
        """``add_trace_request`` if the lock is free right now, else None (for callers that must not wait)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._take_spans(spans)
        finally:
            self._lock.release()

    def _generation(self, now: float) -> _Generation:
        """The generation of the quiet index that takes data arriving now."""
        gens = self._gens
        if not gens or now - gens[-1].started >= self._slice:
            gens.append(_Generation(now))
        gen = gens[-1]
        gen.last = now
        return gen

    def _take_spans(self, spans: TraceSplit) -> list[SpanData]:
        now = time.monotonic()
        touched: list[_Pending] = []
        quiet: list[list[Any]] = []
        taken: list[SpanData] = []
        traces = self._traces
        gen = self._generation(now)
        index = gen.traces
        max_records = self._max_records
        max_run = min(self._max_trace_bytes - QUIET_TRACE_BYTES - QUIET_RUN_BYTES, self._quiet_part_bytes)
        runs_added = bytes_added = 0
        for data, raw, cost in spans.failed:
            pending = traces.get(data.trace_id)
            if pending is None:
                pending = self._promote(raw, now)
            else:
                self._touch(pending, now)
            touched.append(pending)
            data = self._admit_error(pending, data, span_bytes(data) + cost)
            pending.has_error = True
            pending.data.spans[data.span_id] = data
            taken.append(data)
        for raw, run, count in spans.runs:
            pending = traces.get(raw.hex())
            if pending is None:
                # A trace without an error (so far) only costs an entry in the quiet index.
                entry = index.get(raw)
                if entry is None and count <= max_records and len(run) <= max_run:
                    index[raw] = run  # (the common case: see _Generation)
                    runs_added += 1
                    bytes_added += len(run)
                    continue
                if entry is None:
                    entry = index[raw] = [[run], _NO_LOGS, len(run) + QUIET_RUN_BYTES, 0, count, 0, raw]
                else:
                    if type(entry) is bytes:
                        entry = index[raw] = _quiet_entry(entry, raw)
                    entry[0].append(run)
                    entry[2] += len(run) + QUIET_RUN_BYTES
                    entry[4] += count
                quiet.append(entry)
            else:
                self._touch(pending, now)
                self._link_run(pending, run, count)
                touched.append(pending)
        added = bytes_added + runs_added * (QUIET_TRACE_BYTES + QUIET_RUN_BYTES)
        gen.bytes += added
        self._quiet_bytes += added
        # The per-trace bounds on links are enforced once per request rather than per run:
        # cheaper, and a request holds a bounded number of spans anyway (max_request_bytes).
        self._count_quiet(gen, quiet)
        for pending in touched:
            self._enforce_bound(pending)
        self._split_overfull(touched)
        self._evict_if_needed()
        return taken

    def _link_run(self, pending: _Pending, run: bytes, count: int) -> None:
        """Add a run's spans to a failing trace's links, no more than ``max_records_per_trace``
        allows: a whole run of a large export at once would hold them all before the bound."""
        room = self._max_records - pending.records
        if count <= room:
            pending.links.update(run_links(run))
            return
        if room > 0:
            pending.links.update(run_links(run[:room * SPAN_RECORD_BYTES]))
        self._dropped(count - max(room, 0))

    def _touch(self, pending: _Pending, now: float) -> None:
        pending.last_update = now
        self._traces.move_to_end(pending.key)

    def _count_quiet(self, gen: _Generation, entries: list[list[Any]]) -> None:
        """Recount the quiet entries a call added to (all in ``gen``) and hold them to the per-trace bounds."""
        added = 0
        for entry in entries:
            if entry[3] < 0:
                continue
            size = QUIET_TRACE_BYTES + entry[2]
            if size > self._quiet_part_bytes and len(self._gens) > 1:
                self._gather_quiet(gen, entry)
                size = QUIET_TRACE_BYTES + entry[2]
            if size > self._max_trace_bytes or entry[4] + entry[5] > self._max_records:
                size = self._bound_quiet(entry)
            added += size - entry[3]
            entry[3] = size
        gen.bytes += added
        self._quiet_bytes += added

    def _gather_quiet(self, gen: _Generation, entry: list[Any]) -> None:
        """Move what older generations hold of ``entry``'s trace into it (``gen``, the newest), oldest first."""
        raw = entry[6]
        older_gens = list(takewhile(lambda older: older is not gen, self._gens))
        for older in reversed(older_gens):  # each part goes in front of the newer ones
            part = older.traces.pop(raw, None)
            if part is None:
                continue
            if type(part) is bytes:
                part = _quiet_entry(part, raw)
            older.bytes -= part[3]
            self._quiet_bytes -= part[3]
            part[3] = -1  # gone: a caller still holding it must not count it again
            _prepend_quiet(entry, part)

    def _bound_quiet(self, entry: list[Any]) -> int:
        """Drop the newest links, then the newest logs, of a quiet trace beyond its bounds; returns its size."""
        excess = entry[4] + entry[5] - self._max_records
        if excess > 0:
            dropped = self._drop_quiet_links(entry, excess, 0)
            self._dropped(dropped + self._drop_quiet_logs(entry, excess - dropped))
        over = QUIET_TRACE_BYTES + entry[2] - self._max_trace_bytes
        if over > 0:
            dropped = self._drop_quiet_links(entry, 0, over)
            over = QUIET_TRACE_BYTES + entry[2] - self._max_trace_bytes
            logs = entry[1]
            charge = logs[-3].charge if logs else 1
            self._dropped_bytes(dropped + self._drop_quiet_logs(entry, -(-max(over, 0) // charge)))
        held: int = QUIET_TRACE_BYTES + entry[2]
        return held

    @staticmethod
    def _drop_quiet_links(entry: list[Any], count: int, size: int) -> int:
        """Drop the newest links of a quiet trace, at least ``count`` of them and ``size`` bytes'
        worth (fewer if it has fewer); returns how many."""
        runs: list[bytes] = entry[0]
        dropped = freed = 0
        while runs and (dropped < count or freed < size):
            run = runs.pop()
            keep = len(run) // SPAN_RECORD_BYTES
            while keep and (dropped < count or freed < size):
                keep -= 1
                dropped += 1
                freed += SPAN_RECORD_BYTES
            if keep:
                runs.append(run[:keep * SPAN_RECORD_BYTES])
                entry[2] -= len(run) - keep * SPAN_RECORD_BYTES
            else:
                freed += QUIET_RUN_BYTES
                entry[2] -= len(run) + QUIET_RUN_BYTES
        entry[4] -= dropped
        return dropped

    @staticmethod
    def _drop_quiet_logs(entry: list[Any], count: int) -> int:
        """Drop the ``count`` newest log records of a quiet trace (fewer if it has fewer); returns how many."""
        logs = entry[1]
        dropped = 0
        while logs and dropped < count:
            scope, _first, records = logs[-3:]
            gone = min(records, count - dropped)
            if gone == records:
                del logs[-3:]
            else:
                logs[-1] = records - gone
            dropped += gone
            entry[2] -= scope.charge * gone
        entry[5] -= dropped
        return dropped

    def _promote(self, raw: bytes, now: float, key: str = "") -> _Pending:
        """Hold a trace in full from now on (it failed): what the quiet index held of it joins it,
        its logs decoded now. ``key`` is its trace id as held (``raw.hex()`` by default)."""
        pending = self._pending(key or raw.hex(), now)
        logs: list[Any] = []
        for gen in self._gens:  # oldest first: links and logs keep their order of arrival
            entry = gen.traces.pop(raw, None)
            if type(entry) is bytes:
                gen.bytes -= _quiet_size(entry)
                self._quiet_bytes -= _quiet_size(entry)
                self._link_run(pending, entry, len(entry) // SPAN_RECORD_BYTES)
            elif entry is not None:
                gen.bytes -= entry[3]
                self._quiet_bytes -= entry[3]
                entry[3] = -1  # gone: a caller still holding it must not count it again
                for run in entry[0]:
                    self._link_run(pending, run, len(run) // SPAN_RECORD_BYTES)
                logs += entry[1]
        parsed: dict[int, Any] = {}
        resources: set[int] = set()
        for at in range(0, len(logs), 3):
            self._admit_log_run(pending, logs[at], logs[at + 1], logs[at + 2], parsed, resources)
        self._recount(pending)
        return pending

    def _admit_log_run(self, pending: _Pending, scope: RawScope, first: int, records: int,
                       parsed: dict[int, Any], resources: set[int]) -> None:
        """Decode a run of undecoded log records into a failing trace, each admitted within its bounds
        (a resource is charged once per call of the caller, by ``resources``); the caller recounts."""
        for position in range(first, first + records):
            record = scope.decode(position, parsed)
            size = log_bytes(record)
            if id(record.resource) not in resources:
                resources.add(id(record.resource))
                size += value_bytes(record.resource)
            if self._admit_ordinary(pending, size):
                pending.data.logs.append(record)

    def _enforce_bound(self, pending: _Pending) -> None:
        """Drop the newest parent links of a trace beyond its count and byte bounds; failed spans stay."""
        links = len(pending.links)
        size = pending.record_bytes + links * LINK_BYTES
        if size <= self._max_trace_bytes and links + len(pending.data.spans) + len(pending.data.logs) <= self._max_records:
            self._pending_bytes += size - pending.counted  # the common case, on the hot path
            pending.counted = size
            return
        excess = pending.records - self._max_records
        if excess > 0 and pending.links:
            self._dropped(self._drop_links(pending, excess))
        over = pending.bytes - self._max_trace_bytes
        # A trace whose errors alone are over the bound is split (see _split_overfull) with its
        # links, which folding needs; otherwise the newest links make room.
        if over > 0 and pending.links and not (pending.has_error and pending.record_bytes > self._max_trace_bytes):
            self._dropped_bytes(self._drop_links(pending, -(-over // LINK_BYTES)))
        self._recount(pending)

    @staticmethod
    def _drop_links(pending: _Pending, count: int) -> int:
        """Drop the ``count`` newest parent links (fewer if there are fewer); returns how many."""
        victims = list(pending.links)[-count:] if count > 0 else []
        for key in victims:
            del pending.links[key]
        return len(victims)

    def _recount(self, pending: _Pending) -> None:
        size = pending.bytes
        self._pending_bytes += size - pending.counted
        pending.counted = size

    def _admit_error(self, pending: _Pending, record: _Record, size: int) -> _Record:
        """An error is always kept; beyond ``max_trace_bytes`` its long values are truncated."""
        if pending.bytes + size > self._max_trace_bytes:
            if isinstance(record, SpanData):
                record = truncate_span(record)
                size = span_bytes(record)
            else:
                record = truncate_log(record)
                size = log_bytes(record)
            self._metrics.inc("autoheal_trace_bytes_truncated_total")
            self._overfull = True
            self._warn("max_trace_bytes", "a trace reached max_trace_bytes=%d: ordinary records are dropped and "
                       "errors kept with long values truncated", self._max_trace_bytes)
        pending.record_bytes += size
        return record

    def _admit_ordinary(self, pending: _Pending, size: int) -> bool:
        if pending.records >= self._max_records:
            self._dropped()
            return False
        if pending.bytes + size > self._max_trace_bytes:
            self._dropped_bytes()
            return False
        pending.record_bytes += size
        return True

    def _split_overfull(self, touched: Iterable[_Pending]) -> None:
        """A trace whose errors alone exceed ``max_trace_bytes`` is processed now, not held further.

        Data arriving for it later starts a new part, which the pipeline merges as late data.
        """
        if not self._overfull:
            return
        self._overfull = False
        for pending in touched:
            if (pending.bytes > self._max_trace_bytes and pending.has_error
                    and self._traces.get(pending.key) is pending):
                del self._traces[pending.key]
                self._metrics.inc("autoheal_traces_split_total")
                self._release(pending)

    def _release(self, pending: _Pending) -> None:
        """``pending`` left ``_traces``: hand it to the pipeline if it failed, else forget it."""
        self._pending_bytes -= pending.counted
        pending.counted = 0
        if pending.has_error:
            data, size = _finish(pending)
            self._ready.append((data, size))
            self._ready_bytes += size
            self._wake.notify()

    def add_spans(self, spans: Iterable[SpanData]) -> int:
        """Take already-decoded spans (used by in-process exporters and tests)."""
        now = time.monotonic()
        count = 0
        touched: list[_Pending] = []
        with self._lock:
            resources: set[int] = set()
            for span in spans:
                count += 1
                pending = self._pending(span.trace_id, now)
                touched.append(pending)
                size = span_bytes(span)
                if id(span.resource) not in resources:
                    resources.add(id(span.resource))
                    size += value_bytes(span.resource)
                if span.is_error:
                    span = self._admit_error(pending, span, size)
                    pending.has_error = True
                elif not self._admit_ordinary(pending, size):
                    continue
                pending.data.spans[span.span_id] = span
                self._recount(pending)
            self._split_overfull(touched)
            self._evict_if_needed()
        return count

    def add_logs(self, logs: Iterable[LogData]) -> int:
        now = time.monotonic()
        count = 0
        touched: list[_Pending] = []
        with self._lock:
            resources: set[int] = set()
            for record in logs:
                count += 1
                self._add_log(record, now, touched, resources)
            self._split_overfull(touched)
            self._evict_if_needed()
        return count

    def _add_log(self, record: LogData, now: float, touched: list[_Pending], resources: set[int]) -> None:
        size = log_bytes(record)
        if id(record.resource) not in resources:
            resources.add(id(record.resource))
            size += value_bytes(record.resource)
        if not record.trace_id and not record.has_exception:
            self._keep_orphan(record, size)
            return
        exception = record.has_exception
        if not record.trace_id:  # an exception without a trace is a trace of its own
            self._orphan_seq += 1
            pending = self._pending(f"orphan-{self._orphan_seq}", now)
        elif exception:
            pending = self._traces.get(record.trace_id) or self._promote(_raw_id(record.trace_id), now, record.trace_id)
            self._touch(pending, now)
        else:  # (what the quiet index holds of the trace joins it)
            pending = self._traces.get(record.trace_id) or self._promote(_raw_id(record.trace_id), now, record.trace_id)
            self._touch(pending, now)
        touched.append(pending)
        if exception:
            record = self._admit_error(pending, record, size)
            pending.has_error = True
        elif not self._admit_ordinary(pending, size):
            return
        pending.data.logs.append(record)
        self._recount(pending)

    def add_log_scopes(self, scopes: Iterable[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]]) -> int:
        """Take the log records of a logs export as ``split_logs`` left them; returns how many.

        The hot path of the log firehose: the records of a trace without an error stay undecoded
        (a run of indexes into their request body) until their trace fails; decoded records
        (exceptions, trace-less records) take the way of ``add_logs``.
        """
        with self._lock:
            return self._take_log_scopes(scopes)

    def try_add_log_scopes(self, scopes: Iterable[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]],
                           ) -> int | None:
        """``add_log_scopes`` if the lock is free right now, else None (for callers that must not wait)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._take_log_scopes(scopes)
        finally:
            self._lock.release()

    def _take_log_scopes(self, scopes: Iterable[tuple[RawScope, list[LogData | tuple[bytes, int, int]]]]) -> int:
        now = time.monotonic()
        count = 0
        touched: list[_Pending] = []
        quiet: list[list[Any]] = []
        gen = self._generation(now)
        index = gen.traces
        traces = self._traces
        resources: set[int] = set()
        parsed: dict[int, Any] = {}
        for scope, records in scopes:
            charge = scope.charge
            for record in records:
                if type(record) is not tuple:
                    count += 1
                    self._add_log(record, now, touched, resources)  # type: ignore[arg-type]
                    continue
                raw, first, records_in_run = record
                count += records_in_run
                pending = traces.get(raw.hex())
                if pending is None:
                    entry = index.get(raw)
                    if entry is None:
                        entry = index[raw] = [[], [scope, first, records_in_run], charge * records_in_run, 0, 0,
                                              records_in_run, raw]
                    else:
                        if type(entry) is bytes:
                            entry = index[raw] = _quiet_entry(entry, raw)
                        if entry[1] is _NO_LOGS:
                            entry[1] = []
                        entry[1] += (scope, first, records_in_run)
                        entry[2] += charge * records_in_run
                        entry[5] += records_in_run
                    quiet.append(entry)
                    continue
                self._touch(pending, now)
                touched.append(pending)
                self._admit_log_run(pending, scope, first, records_in_run, parsed, resources)
                self._recount(pending)
        self._count_quiet(gen, quiet)
        self._split_overfull(touched)
        self._evict_if_needed()
        return count

    def _keep_orphan(self, record: LogData, size: int) -> None:
        """Trace-less logs feed the fallback context: a ring bounded in count and in bytes."""
        if size > ORPHAN_LOG_BYTES:
            record = truncate_log(record)
            size = log_bytes(record)
        self._orphan_logs.append((record, size))
        self._orphan_bytes += size
        while len(self._orphan_logs) > ORPHAN_LOG_RING or self._orphan_bytes > self._max_orphan_bytes:
            _, old = self._orphan_logs.popleft()
            self._orphan_bytes -= old

    def _pending(self, trace_id: str, now: float) -> _Pending:
        pending = self._traces.get(trace_id)
        if pending is None:
            orphan = trace_id.startswith("orphan-")
            pending = _Pending(TraceData(trace_id if not orphan else ""), now, key=trace_id)
            self._traces[trace_id] = pending
        else:
            pending.last_update = now
            self._traces.move_to_end(trace_id)
        return pending

    def _warn(self, setting: str, message: str, *args: object) -> None:
        """Log ``message`` naming the setting to raise, at most once a minute per setting."""
        now = time.monotonic()
        if now - self._warned.get(setting, -1e9) > 60:
            self._warned[setting] = now
            env = "AUTOHEAL_" + setting.upper()
            log.warning(message + ". Raise %s (%s) to keep more.", *args, setting, env)

    def _dropped(self, count: int = 1) -> None:
        self._metrics.inc("autoheal_records_dropped_total", count)
        self._warn("max_records_per_trace", "a trace exceeded max_records_per_trace=%d; ordinary records are "
                   "dropped (errors kept)", self._max_records)

    def _dropped_bytes(self, count: int = 1) -> None:
        self._metrics.inc("autoheal_trace_bytes_dropped_total", count)
        self._warn("max_trace_bytes", "a trace reached max_trace_bytes=%d: ordinary records are dropped and "
                   "errors kept with long values truncated", self._max_trace_bytes)

    def _evict_if_needed(self) -> None:
        while len(self._traces) > self._max_traces:
            _, pending = self._traces.popitem(last=False)
            self._metrics.inc("autoheal_traces_evicted_total")
            self._release(pending)
            self._warn("max_traces", "more than max_traces=%d traces in flight; the oldest are processed early "
                       "(possibly incomplete), or lower trace_wait", self._max_traces)
        # A failed trace still holds its bytes until the pipeline is done with it, so evict
        # only as much as the excess (not until the total is below the bound, which could empty
        # the assembler while the pipeline catches up; check_capacity pushes back meanwhile).
        excess = self.held_bytes() - self._max_held_bytes
        # Traces without an error go first, a generation at a time: forgetting them loses
        # nothing unless an error comes for them later.
        while excess > 0 and self._gens:
            gen = self._gens.popleft()
            excess -= gen.bytes
            self._quiet_bytes -= gen.bytes
            # Not processed (they have no error): counted apart from failing traces processed early.
            self._metrics.inc("autoheal_traces_forgotten_total", len(gen.traces))
            self._warn("max_held_bytes", "more than max_held_bytes=%d bytes held; the oldest traces are processed "
                       "early (possibly incomplete)", self._max_held_bytes)
        while excess > 0 and self._traces:
            _, pending = self._traces.popitem(last=False)
            excess -= pending.counted
            self._metrics.inc("autoheal_traces_evicted_bytes_total")
            self._release(pending)
            self._warn("max_held_bytes", "more than max_held_bytes=%d bytes held; the oldest traces are processed "
                       "early (possibly incomplete)", self._max_held_bytes)

    # -- release --------------------------------------------------------------------------
    def _expire_quiet(self, now: float) -> None:
        """Forget generations of traces without an error that stayed silent for ``trace_wait``.

        A trace that also received data in a newer generation is carried into it instead.
        """
        gens = self._gens
        while gens and now - gens[0].last >= self._trace_wait and (len(gens) > 1 or now - gens[0].started >= self._slice):
            old = gens.popleft()
            self._quiet_bytes -= old.bytes
            for gen in gens:
                if not old.traces:
                    break
                for raw in old.traces.keys() & gen.traces.keys():
                    entry = old.traces.pop(raw)
                    if type(entry) is bytes:
                        entry = _quiet_entry(entry, raw)
                    newer = gen.traces[raw]
                    if type(newer) is bytes:
                        newer = gen.traces[raw] = _quiet_entry(newer, raw)
                    _prepend_quiet(newer, entry)
                    size = QUIET_TRACE_BYTES + newer[2]
                    if size > self._max_trace_bytes or newer[4] + newer[5] > self._max_records:
                        size = self._bound_quiet(newer)
                    gen.bytes += size - newer[3]
                    self._quiet_bytes += size - newer[3]
                    newer[3] = size

    def _collect_expired(self, now: float) -> None:
        self._expire_quiet(now)
        while self._traces:
            trace_id, pending = next(iter(self._traces.items()))
            if now - pending.last_update < self._trace_wait:
                break
            del self._traces[trace_id]
            self._release(pending)

    def _until_due(self, now: float) -> float:
        """Seconds until the oldest trace held (failing, or a quiet generation) has been silent for ``trace_wait``.

        ``_traces`` is in last-update order, so its first trace is the next one due. At most
        ``trace_wait``: whatever arrives during the wait is due after it ends, so intake need not wake us.
        """
        due = now + self._trace_wait
        if self._traces:
            due = min(due, next(iter(self._traces.values())).last_update + self._trace_wait)
        if self._gens:
            oldest = self._gens[0]
            # (The last generation also waits out its slice: see _expire_quiet.)
            quiet = oldest.last + self._trace_wait
            due = min(due, quiet if len(self._gens) > 1 else max(quiet, oldest.started + self._slice))
        return max(due - now, 0.0)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._ready and not self._stop:
                    # Wake when the next trace is due, not on a fixed tick that added up to 200 ms.
                    self._wake.wait(timeout=self._until_due(time.monotonic()))
                self._collect_expired(time.monotonic())
                if self._stop and not self._ready:
                    return
                batch = list(self._ready)
                self._ready.clear()
                orphans = [record for record, _ in self._orphan_logs]
                self._busy = bool(batch)
            if self._on_batch is not None and batch:  # it handles a bad trace itself
                self._on_batch([trace for trace, _ in batch], orphans)
                with self._lock:
                    self._ready_bytes -= sum(size for _, size in batch)
                batch = []
            for trace, size in batch:
                try:
                    self._on_trace(trace, orphans)
                except Exception:  # one bad trace must not stop the service
                    self._metrics.inc("autoheal_pipeline_errors_total")
                    log.exception("failed to process trace %s", trace.trace_id or "(no trace id)")
                with self._lock:
                    self._ready_bytes -= size
            del batch, orphans
            with self._lock:
                self._busy = False

    def flush(self, timeout: float = 30.0) -> bool:
        """Release every held trace now and wait until the pipeline has processed them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            for pending in self._traces.values():
                self._release(pending)
            self._traces.clear()
            self._gens.clear()  # traces without an error: nothing to process
            self._quiet_bytes = 0
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
