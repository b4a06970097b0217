"""``otel-autoheal serve``: the receivers, the assembler, the pipeline and the sink, wired together."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

from otel_autoheal.assemble import Assembler
from otel_autoheal.config import Config, parse_hostport
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import LogData, SpanData, from_journal, journal_key
from otel_autoheal.pipeline import Pipeline
from otel_autoheal.receive import GrpcReceiver, HttpReceiver, Intake
from otel_autoheal.receive.intake import INFLIGHT_REQUESTS
from otel_autoheal.receive.journal import JournalWriter
from otel_autoheal.sinks import select_sink
from otel_autoheal.sinks.base import Sink
from otel_autoheal.state import open_store
from otel_autoheal.ui import WebUI

__all__ = ["Service"]

log = logging.getLogger("otel_autoheal.service")

#: Seconds between checks that the state database file is still the one opened.
STATE_CHECK_INTERVAL = 1.0
#: Seconds between looks for the journal entries of instances that died (shared databases only)
#: and for entries of this instance whose processing failed (e.g. the database was unreachable).
ORPHAN_CHECK_INTERVAL = 10.0


#: glibc ``mallopt`` parameter M_ARENA_MAX.
_M_ARENA_MAX = -8


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Fewer glibc malloc arenas, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that allocates concurrently an arena of its own; the receiver
    threads free megabyte request buffers in them, and the fragmented arenas kept the peak RSS
    under concurrent 8 MiB requests at ~500 MB instead of ~300 MB (README, "Memory"). Must run
    before the receiver threads start; a no-op on other C libraries.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


#: The cyclic garbage collector's thresholds while serving (Python's default: 700, 10, 10).
GC_THRESHOLDS = (10_000, 50, 50)

class Service:
    """The running service. ``start()`` binds the ports; ``stop()`` drains and is idempotent."""

    def __init__(self, config: Config, sink: Sink | None = None) -> None:
        _limit_malloc_arenas()
        self.config = config
        self.metrics = Metrics()
        self.store = open_store(config, owner=config.instance_id or f"{socket.gethostname()}:{config.otlp_grpc}")
        self._stopped = threading.Event()
        try:
            self._build(config, sink)
        except BaseException:
            self._abandon()
            raise
        self._started_at = time.time()
        self._watchdog = threading.Thread(target=self._watch_state, name="autoheal-state-watch", daemon=True)

    def _build(self, config: Config, sink: Sink | None) -> None:
        self.sink = sink or select_sink(config, self.store, self.metrics)
        self.pipeline = Pipeline(config, self.store, self.sink, self.metrics)
        self.assembler = Assembler(
            self.pipeline.process, config.trace_wait, config.max_traces, config.max_records_per_trace,
            config.max_pending_traces, self.metrics, config.max_trace_bytes, config.max_held_bytes,
            lambda: self.pipeline.recent_bytes, on_batch=self.pipeline.process_batch,
        )
        self.journal = JournalWriter(self.store, config.journal_timeout) if config.intake_journal else None
        intake = Intake(self.assembler, self.metrics, config.ingest_token, config.max_request_bytes, self.journal,
                        config.ingest_tokens, scrubber=self.pipeline.scrubber,
                        max_inflight_bytes=config.max_inflight_bytes or INFLIGHT_REQUESTS * config.max_request_bytes)
        self.ui = None
        if config.ui:
            self.ui = WebUI(config, self.store, self.sink, self.metrics, self.health)
        grpc_host, grpc_port = parse_hostport("otlp_grpc", config.otlp_grpc)
        http_host, http_port = parse_hostport("otlp_http", config.otlp_http)
        self.grpc = GrpcReceiver(intake, grpc_host, grpc_port)
        self.http = HttpReceiver(
            intake, self.metrics, http_host, http_port, config.cors_origins, self.health,
            metrics_token=config.metrics_token, header_timeout=config.http_header_timeout,
            body_timeout=config.http_body_timeout, keepalive_timeout=config.http_keepalive_timeout,
            max_connections=config.http_max_connections,
            extra_routes=self.ui.otlp_routes() if self.ui is not None else (),
        )
        # Replayed only once both ports are ours: a start that fails must not touch the journal.
        self._replay_journal()
        self.metrics.gauge("autoheal_groups", "Groups (issues) in the state store.", self.store.group_count)
        if self.journal is not None:
            journal = self.journal
            self.metrics.gauge("autoheal_journal_waiting", "OTLP requests waiting for their errors to be journalled.",
                               lambda: journal.waiting)

    def _abandon(self) -> None:
        """Undo a start that failed half-way: nothing stays bound, running or open."""
        if getattr(self, "http", None) is not None:
            self.http.stop()
        if getattr(self, "grpc", None) is not None:
            self.grpc.server.stop(None)
        ui = getattr(self, "ui", None)
        if ui is not None:
            ui.stop()
        journal = getattr(self, "journal", None)
        if journal is not None:
            journal.close(1.0)
        if getattr(self, "sink", None) is not None:
            self.sink.close(1.0)
        self.store.close()

    def _watch_state(self) -> None:
        """Notice the database file being deleted or replaced even while no error arrives; on a
        shared database, renew this instance's heartbeat and replay what dead instances left."""
        orphans_at = time.monotonic()
        while not self._stopped.wait(STATE_CHECK_INTERVAL):
            if self.store.check_file() is not None:
                return
            if time.monotonic() - orphans_at >= ORPHAN_CHECK_INTERVAL:
                orphans_at = time.monotonic()
                self._sweep_journal()

    def _sweep_journal(self) -> None:
        """Process again what the journal still holds long after it arrived, and what dead instances left."""
        # Entries still there this long after they arrived were not recorded: their processing failed.
        stale_after = max(self.config.journal_retry_after, 2 * self.config.trace_wait)
        try:
            self._replay(self.store.journal_entries(received_before=time.time() - stale_after),
                         f"still unrecorded after {stale_after:g}s (their processing failed)")
            if self.config.database_url:
                self._replay(self.store.adopt_orphans(), "of a dead instance")
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            log.warning("cannot sweep the intake journal: %s", exc)

    def _replay_journal(self) -> None:
        """Errors acknowledged before a crash but never processed go through the pipeline again."""
        self._replay(self.store.journal_entries(), "received before an unclean stop")
        if self.config.database_url:
            self._replay(self.store.adopt_orphans(), "of a dead instance")

    def _replay(self, entries: list[tuple[int, str, str, str]], why: str) -> None:
        spans: list[SpanData] = []
        logs: list[LogData] = []
        rekeyed: list[tuple[str, int]] = []
        for entry_id, key, kind, payload in entries:
            try:
                record = from_journal(kind, payload)
            except (ValueError, TypeError):
                log.warning("skipping an unreadable intake journal entry %d", entry_id)
                continue
            if not key:  # written by a version that kept every trace-less log under one empty key
                rekeyed.append((journal_key(record), entry_id))
            if isinstance(record, SpanData):
                spans.append(record)
            else:
                logs.append(record)
        if rekeyed:
            self.store.journal_rekey(rekeyed)
        if spans or logs:
            self.assembler.add_spans(spans)
            self.assembler.add_logs(logs)
            self.metrics.inc("autoheal_journal_replayed_total", len(spans) + len(logs))
            log.warning("replaying %d failed spans and %d exception logs %s", len(spans), len(logs), why)

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def ui_url(self) -> str:
        """Where the web page is served, or "" when it is off (``ui = false``)."""
        return self.ui.url(self.http_port) if self.ui is not None else ""

    def health(self) -> dict[str, Any]:
        """``status`` is "ok" or "error" (then ``error`` says why; /healthz answers 503)."""
        health: dict[str, Any] = {"status": "ok", "sink": self.sink.name,
                                  "uptime_seconds": round(time.time() - self._started_at, 1)}
        lost = self.store.check_file()
        if lost is not None:
            health.update(status="error", error=lost)
        return health

    def start(self) -> None:
        # Held traces are many small containers living for trace_wait: at the default thresholds
        # the cyclic collector's passes over them cost ~11% of the CPU per ingested span
        # (bench/ingest.py). What start-up built is never garbage: out of the passes for good.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.assembler.start()
        self._watchdog.start()
        self.grpc.start()
        self.http.start()
        if self.ui is not None:
            self.ui.start()
        log.info("otel-autoheal listening: OTLP/gRPC %s:%d, OTLP/HTTP %s:%d, state %s, sink %s",
                 *parse_hostport("otlp_grpc", self.config.otlp_grpc)[:1], self.grpc_port,
                 *parse_hostport("otlp_http", self.config.otlp_http)[:1], self.http_port,
                 self.store.path, self.sink.name)
        if self.ui is not None:
            log.info("web page: %s", self.ui_url)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.journal is not None:
            # First, so that requests waiting for the journal are answered (503) at once and the
            # servers below need not wait for them.
            self.journal.close(timeout)
        self.http.stop()
        if self.ui is not None:
            self.ui.stop()
        self.grpc.stop(1.0)
        self.assembler.stop(timeout)
        self.sink.close(timeout)
        self.store.close()
