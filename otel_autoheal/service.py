"""``otel-autoheal serve``: the receivers, the assembler, the pipeline and the sink, wired together."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from typing import Any

from otel_autoheal.assemble import Assembler
from otel_autoheal.config import Config, parse_hostport, state_path
from otel_autoheal.metrics import Metrics
from otel_autoheal.otlp import LogData, SpanData, from_journal
from otel_autoheal.pipeline import Pipeline
from otel_autoheal.receive import GrpcReceiver, HttpReceiver, Intake
from otel_autoheal.receive.journal import JournalWriter
from otel_autoheal.sinks import select_sink
from otel_autoheal.sinks.base import Sink
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["Service"]

log = logging.getLogger("otel_autoheal.service")


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


class Service:
    """The running service. ``start()`` binds the ports; ``stop()`` drains and is idempotent."""

    def __init__(self, config: Config, sink: Sink | None = None) -> None:
        _limit_malloc_arenas()
        self.config = config
        self.metrics = Metrics()
        self.store = SQLiteStore.in_dir(state_path(config))
        self.sink = sink or select_sink(config, self.store, self.metrics)
        self.pipeline = Pipeline(config, self.store, self.sink, self.metrics)
        self.assembler = Assembler(
            self.pipeline.process, config.trace_wait, config.max_traces, config.max_records_per_trace,
            config.max_pending_traces, self.metrics, config.max_trace_bytes, config.max_held_bytes,
            lambda: self.pipeline.recent_bytes,
        )
        self.journal = JournalWriter(self.store) if config.intake_journal else None
        intake = Intake(self.assembler, self.metrics, config.ingest_token, config.max_request_bytes, self.journal)
        self._replay_journal()
        grpc_host, grpc_port = parse_hostport("otlp_grpc", config.otlp_grpc)
        http_host, http_port = parse_hostport("otlp_http", config.otlp_http)
        self.grpc = GrpcReceiver(intake, grpc_host, grpc_port)
        self.http = HttpReceiver(intake, self.metrics, http_host, http_port, config.cors_origins, self.health)
        self.metrics.gauge("autoheal_groups", "Groups (issues) in the state store.", lambda: len(self.store.groups()))
        self._stopped = threading.Event()
        self._started_at = time.time()

    def _replay_journal(self) -> None:
        """Errors acknowledged before a crash but never processed go through the pipeline again."""
        spans: list[SpanData] = []
        logs: list[LogData] = []
        for _id, _trace, kind, payload in self.store.journal_entries():
            try:
                record = from_journal(kind, payload)
            except (ValueError, TypeError):
                log.warning("skipping an unreadable intake journal entry %d", _id)
                continue
            if isinstance(record, SpanData):
                spans.append(record)
            else:
                logs.append(record)
        if spans or logs:
            self.assembler.add_spans(spans)
            self.assembler.add_logs(logs)
            self.metrics.inc("autoheal_journal_replayed_total", len(spans) + len(logs))
            log.warning("replaying %d failed spans and %d exception logs received before an unclean stop",
                        len(spans), len(logs))

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    @property
    def http_port(self) -> int:
        return self.http.port

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "sink": self.sink.name, "uptime_seconds": round(time.time() - self._started_at, 1)}

    def start(self) -> None:
        self.assembler.start()
        self.grpc.start()
        self.http.start()
        log.info("otel-autoheal listening: OTLP/gRPC %s:%d, OTLP/HTTP %s:%d, state %s, sink %s",
                 *parse_hostport("otlp_grpc", self.config.otlp_grpc)[:1], self.grpc_port,
                 *parse_hostport("otlp_http", self.config.otlp_http)[:1], self.http_port,
                 self.store.path, self.sink.name)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.http.stop()
        self.grpc.stop(1.0)
        if self.journal is not None:
            self.journal.close(timeout)
        self.assembler.stop(timeout)
        self.sink.close(timeout)
        self.store.close()
