"""Group commit of the intake journal: receivers wait for their entries to be durable, together.

Each receiver thread queues its failed spans and exception logs and waits until a writer thread
has committed them; the writer commits everything queued at once, so concurrent requests share one
SQLite transaction instead of paying one each.
"""

from __future__ import annotations

import logging
import threading

from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["JournalWriter"]

log = logging.getLogger("otel_autoheal.receive.journal")

#: Longest a receiver waits for its entries to be committed before it acknowledges anyway: a
#: stuck disk must slow ingestion down, not stop it.
MAX_WAIT_SECONDS = 5.0


class JournalWriter:
    """Thread-safe; ``add`` returns once the entries are committed (or after ``MAX_WAIT_SECONDS``)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._queue: list[tuple[str, str, str]] = []
        self._queued = 0  # sequence number of the last queued batch
        self._committed = 0  # sequence number of the last committed batch
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="autoheal-journal", daemon=True)
        self._thread.start()

    def add(self, entries: list[tuple[str, str, str]]) -> None:
        if not entries:
            return
        with self._cond:
            if self._stop:
                return
            self._queue.extend(entries)
            self._queued += 1
            ticket = self._queued
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._committed >= ticket or self._stop, MAX_WAIT_SECONDS):
                log.warning("the intake journal is slow: acknowledged data without waiting for the disk")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stop)
                if self._stop and not self._queue:
                    return
                batch, self._queue = self._queue, []
                ticket = self._queued
            try:
                self._store.journal_add(batch)
            except Exception:  # the journal is a safety net; ingestion goes on without it
                log.exception("cannot write the intake journal (%d entries)", len(batch))
            with self._cond:
                self._committed = ticket
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
