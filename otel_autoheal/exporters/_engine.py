"""The in-process engine: one assembler + pipeline + store + sink shared by a span and a log exporter.

Contract:
- ``submit_spans``/``submit_logs`` only append to a bounded queue (counted in records) and return;
  they never raise and never wait for the pipeline. What does not fit is dropped, counted in
  ``dropped`` and ``autoheal_exporter_dropped_total``, and logged once with the setting to raise.
- A worker thread converts queued SDK objects and feeds the assembler; the assembler's thread runs
  the pipeline and the sink, so a slow or failing sink never reaches the exporting thread.
- Exporters ``acquire`` the engine and ``release`` it on shutdown; the last release flushes and
  closes it, so spans and logs of one trace meet even when one provider shuts down first.
- ``shared()`` returns one engine per state directory per process. After ``fork`` the child
  builds a fresh engine on first use (threads and SQLite connections do not survive a fork).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from otel_autoheal.assemble import Assembler
from otel_autoheal.config import Config, SettingSource, load_config, source_of, state_path
from otel_autoheal.errors import Overloaded
from otel_autoheal.exporters._convert import split_logs, trace_split
from otel_autoheal.metrics import Metrics
from otel_autoheal.model import TraceData
from otel_autoheal.otlp import LogData
from otel_autoheal.pipeline import Pipeline
from otel_autoheal.sinks import select_sink
from otel_autoheal.sinks.base import Sink
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "ENV_EXPORTER_QUEUE_SIZE",
    "AutohealEngine",
    "default_trace_wait",
]

log = logging.getLogger("otel_autoheal.exporters")

#: Spans + log records waiting for the exporter's worker thread; beyond it new ones are dropped.
ENV_EXPORTER_QUEUE_SIZE = "AUTOHEAL_EXPORTER_QUEUE_SIZE"
#: Default of ``queue_size``: about 20 full SDK batches.
DEFAULT_QUEUE_SIZE = 10_000
#: Seconds ``shutdown()`` may take (the SDK's ``shutdown()`` has no timeout argument).
DEFAULT_SHUTDOWN_TIMEOUT = 10.0

_ENV_BSP_DELAY = "OTEL_BSP_SCHEDULE_DELAY"
_ENV_BLRP_DELAY = "OTEL_BLRP_SCHEDULE_DELAY"


def _millis(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(env.get(name, "") or default))
    except ValueError:
        return default


def default_trace_wait(env: Mapping[str, str] | None = None) -> float:
    """In-process default: the SDK's longest batch delay + 1 s (6 s with the SDK defaults).

    Spans reach an exporter up to ``OTEL_BSP_SCHEDULE_DELAY`` (5 s) after they end and logs up to
    ``OTEL_BLRP_SCHEDULE_DELAY`` (1 s) after they are emitted, so a shorter wait could process the
    logs of a trace before its spans arrive. With Simple processors 1 s is plenty.
    """
    env = os.environ if env is None else env
    delay = max(_millis(env, _ENV_BSP_DELAY, 5000), _millis(env, _ENV_BLRP_DELAY, 1000))
    return delay / 1000 + 1.0


def _load_config(
    state_dir: str | os.PathLike[str] | None,
    trace_wait: float | None,
    config_file: str | os.PathLike[str] | None,
    env: Mapping[str, str],
) -> Config:
    """Explicit argument > ``AUTOHEAL_*`` env var > config file > in-process default."""
    overrides = {"state_dir": str(state_dir) if state_dir is not None else None, "trace_wait": trace_wait}
    config = load_config(config_file, env, overrides)
    if source_of(config, "trace_wait").kind == "default":
        derived = SettingSource("default", path=f"{_ENV_BSP_DELAY}/{_ENV_BLRP_DELAY} + 1 s")
        config = replace(config, trace_wait=default_trace_wait(env), set_by={**config.set_by, "trace_wait": derived})
    return config


def _queue_size(explicit: int | None, env: Mapping[str, str]) -> int:
    if explicit is not None:
        return max(1, int(explicit))
    raw = env.get(ENV_EXPORTER_QUEUE_SIZE, "")
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            log.warning("%s=%r is not an integer; using %d", ENV_EXPORTER_QUEUE_SIZE, raw, DEFAULT_QUEUE_SIZE)
    return DEFAULT_QUEUE_SIZE


def _suppressed(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with OTel instrumentation suppressed, so our own I/O (SQLite, GitHub API calls
    from the sink) never becomes spans that are exported back into us."""
    from opentelemetry import context

    def run(*args: Any) -> Any:
        token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            return func(*args)
        finally:
            context.detach(token)

    return run


_REGISTRY: dict[str, AutohealEngine] = {}
_REGISTRY_LOCK = threading.RLock()
_ENGINES: weakref.WeakSet[AutohealEngine] = weakref.WeakSet()
#: Engines inherited through fork are kept alive, so their SQLite connections are never closed
#: (or checkpointed) from a process that does not own them.
_INHERITED: list[AutohealEngine] = []


def _registry_key(config: Config) -> str:
    return str(state_path(config).resolve())


def _after_fork_in_child() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.RLock()  # may have been held by another thread at fork time
    _REGISTRY.clear()
    for engine in list(_ENGINES):
        engine._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class AutohealEngine:
    """Assembler + pipeline + state store + sink running inside the application's process.

    Pass one engine to both exporters, or let them find it with ``AutohealEngine.shared()``
    (what the no-argument constructors do). Arguments left as ``None`` come from the
    ``AUTOHEAL_*`` env vars (``AUTOHEAL_STATE_DIR``, ``AUTOHEAL_TRACE_WAIT``, …, see
    ``otel_autoheal.config``), then the config file (``AUTOHEAL_CONFIG``), then the defaults.
    ``trace_wait`` defaults to :func:`default_trace_wait` in-process.
    """

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        trace_wait: float | None = None,
        queue_size: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
        config: Config | None = None,
        sink: Sink | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.config = config if config is not None else _load_config(state_dir, trace_wait, config_file, env)
        self.queue_size = _queue_size(queue_size, env)
        self.shutdown_timeout = shutdown_timeout
        self._user_sink = sink
        self._pid = os.getpid()
        self._successor: AutohealEngine | None = None
        self._users = 0
        self._closed = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[tuple[str, Sequence[Any]]] = deque()
        self._queued = 0
        self._busy = False
        self._warned_full = False
        self._warned_behind = False
        self.dropped = 0
        self.metrics = Metrics()
        self.store = SQLiteStore.in_dir(state_path(self.config))
        try:
            self.sink = sink if sink is not None else select_sink(self.config, self.store, self.metrics, explicit_github=True)
            self.pipeline = Pipeline(self.config, self.store, self.sink, self.metrics)
            # Every trace finished together is recorded in one store transaction, as in the service:
            # an error storm in the application costs a transaction per batch, not per trace.
            self.assembler = Assembler(
                _suppressed(self.pipeline.process), self.config.trace_wait, self.config.max_traces,
                self.config.max_records_per_trace, self.config.max_pending_traces, self.metrics,
                self.config.max_trace_bytes, self.config.max_held_bytes, lambda: self.pipeline.recent_bytes,
                on_batch=_suppressed(self._process_batch),
            )
        except BaseException:
            self.store.close()
            raise
        self.metrics.gauge("autoheal_exporter_queued", "Spans and log records waiting for the exporter's worker.",
                           lambda: self._queued)
        self._worker = threading.Thread(target=_suppressed(self._run), name="autoheal-exporter", daemon=True)
        self.assembler.start()
        self._worker.start()
        _ENGINES.add(self)
        with _REGISTRY_LOCK:  # an explicit engine is also the one no-argument exporters find
            known = _REGISTRY.get(_registry_key(self.config))
            if known is None or known._closed or known._pid != self._pid:
                _REGISTRY[_registry_key(self.config)] = self

    # -- sharing -------------------------------------------------------------------------
    @classmethod
    def shared(cls, state_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> AutohealEngine:
        """The engine of this process for ``state_dir`` (after env vars and defaults), created on first use.

        The other arguments are used only when the engine is created.
        """
        env = kwargs.get("env")
        env = os.environ if env is None else env
        trace_wait = kwargs.pop("trace_wait", None)
        config = _load_config(state_dir, trace_wait, kwargs.pop("config_file", None), env)
        key = _registry_key(config)
        with _REGISTRY_LOCK:
            engine = _REGISTRY.get(key)
            if engine is None or engine._closed or engine._pid != os.getpid():
                engine = cls(config=config, **kwargs)
                _REGISTRY[key] = engine
            elif ((kwargs.get("sink") is not None and kwargs["sink"] is not engine._user_sink)
                  or (trace_wait is not None and trace_wait != engine.config.trace_wait)
                  or (kwargs.get("queue_size") is not None and kwargs["queue_size"] != engine.queue_size)):
                log.warning("otel-autoheal already runs for state dir %s; the settings it was created with apply. "
                            "Pass one AutohealEngine to both exporters to choose them explicitly.", key)
            return engine

    def acquire(self) -> AutohealEngine:
        """Register one more user (an exporter); returns the engine to use in this process."""
        engine = self.current()
        with engine._lock:
            engine._users += 1
        return engine

    def release(self, timeout: float | None = None) -> None:
        """One user is done; the last one flushes and closes the engine."""
        if self._pid != os.getpid():  # forked child: release the engine that replaced us, if any
            successor = self._successor
            if successor is not None:
                successor.release(timeout)
            return
        with self._lock:
            self._users = max(0, self._users - 1)
            last = self._users == 0
        if last:
            self.shutdown(timeout)

    def current(self) -> AutohealEngine:
        """This engine, or after a ``fork`` the fresh engine that replaced it in this process."""
        if self._pid == os.getpid():
            return self
        with _REGISTRY_LOCK:
            successor = self._successor
            if successor is None or successor._pid != os.getpid():
                successor = AutohealEngine(config=self.config, sink=self._user_sink, queue_size=self.queue_size,
                                           shutdown_timeout=self.shutdown_timeout)
                successor._users = self._users
                self._successor = successor
        return successor.current()

    def _forked(self) -> None:
        # Our threads do not exist in the child: never wait for them, never touch the
        # inherited SQLite connection (sqlite forbids using it across fork).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closed = True
        _INHERITED.append(self)

    # -- intake --------------------------------------------------------------------------
    def submit_spans(self, spans: Sequence[Any]) -> bool:
        """Queue SDK ``ReadableSpan`` objects; False when (some were) dropped or the engine is closed."""
        return self._submit("spans", spans)

    def submit_logs(self, records: Sequence[Any]) -> bool:
        """Queue SDK ``ReadableLogRecord`` objects; False when (some were) dropped or the engine is closed."""
        return self._submit("logs", records)

    def _submit(self, kind: str, batch: Sequence[Any]) -> bool:
        if not batch:
            return True
        with self._lock:
            if self._closed:
                return False
            room = self.queue_size - self._queued
            taken = batch if len(batch) <= room else batch[:max(0, room)]
            if taken:
                self._queue.append((kind, taken))
                self._queued += len(taken)
                self._cond.notify()
            lost = len(batch) - len(taken)
            if lost:
                self.dropped += lost
                first = not self._warned_full
                self._warned_full = True
        if lost:
            self.metrics.inc("autoheal_exporter_dropped_total", lost, reason="queue_full")
            if first:
                log.warning("otel-autoheal exporter queue is full (queue_size=%d): %d %s dropped; further drops are "
                            "only counted. Raise queue_size (AUTOHEAL_EXPORTER_QUEUE_SIZE) to keep them.",
                            self.queue_size, lost, kind)
            return False
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                kind, batch = self._queue.popleft()
                self._busy = True
            try:
                self._feed(kind, batch)
            except Exception:  # never let one bad batch stop the worker
                self.metrics.inc("autoheal_pipeline_errors_total")
                log.exception("otel-autoheal exporter failed to take %d %s", len(batch), kind)
            finally:
                with self._lock:
                    self._queued -= len(batch)
                    self._busy = False
                    self._cond.notify_all()

    def _feed(self, kind: str, batch: Sequence[Any]) -> None:
        try:
            self.assembler.check_capacity()
        except Overloaded as exc:
            with self._lock:
                self.dropped += len(batch)
            self.metrics.inc("autoheal_exporter_dropped_total", len(batch), reason="pipeline_behind")
            if not self._warned_behind:
                self._warned_behind = True
                log.warning("otel-autoheal pipeline is behind (%s): new telemetry is dropped until it catches up. "
                            "Raise max_pending_traces (AUTOHEAL_MAX_PENDING_TRACES) or check the sink.", exc)
            return
        if kind == "spans":
            self.assembler.add_trace_request(trace_split(batch))
        else:
            self.assembler.add_log_scopes(split_logs(batch))

    def _process_batch(self, traces: list[TraceData], orphan_logs: list[LogData]) -> None:
        """``Pipeline.process_batch``: a batch whose transaction fails is recorded trace by trace, and a
        trace that cannot be processed costs only itself."""
        try:
            self.pipeline.process_batch(traces, orphan_logs)
        except Exception:  # (it handles its errors itself; were one to escape, the assembler's thread lives on)
            self.metrics.inc("autoheal_pipeline_errors_total", len(traces))
            log.exception("otel-autoheal failed to process %d traces", len(traces))

    # -- flush and shutdown --------------------------------------------------------------
    def _drain(self, deadline: float) -> bool:
        with self._lock:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Process everything received so far, held traces included; False if ``timeout`` ran out."""
        if self._closed:
            return True
        deadline = time.monotonic() + timeout
        if not self._drain(deadline):
            return False
        return self.assembler.flush(max(0.0, deadline - time.monotonic()))

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, then stop the threads and close the sink and the store (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        timeout = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        done = self._drain(deadline)
        self._worker.join(max(0.0, deadline - time.monotonic()))
        done = self.assembler.flush(max(0.0, deadline - time.monotonic())) and done
        self.assembler.stop(max(0.0, min(1.0, deadline - time.monotonic())))
        if not done:
            # The pipeline thread may still be using the store: leave it open, the process is ending.
            log.warning("otel-autoheal did not finish processing within %.1fs at shutdown; "
                        "some errors may not be recorded", timeout)
            return
        try:
            self.sink.close(max(0.0, deadline - time.monotonic()))
        finally:
            self.store.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state_dir(self) -> Path:
        return state_path(self.config)
