"""Read-only SQLite connections for readers, so that reads never wait for the write lock.

In WAL mode a reader sees the last committed state while a writer (in this process or another)
holds its transaction open, so scrapes, ``issues`` and the pipeline's look-ups run next to writes
instead of queueing behind them on the store's single write connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ReaderPool"]

#: Idle read connections kept open; more are opened when more threads read at once, and closed after.
MAX_IDLE_READERS = 4
#: A reader only waits for a lock during WAL recovery or a truncating checkpoint; never for writers.
READER_BUSY_TIMEOUT_MS = 5_000


class ReaderPool:
    """Hands out read-only connections; each ``read()`` block is one snapshot (a read transaction)."""

    def __init__(self, path: Path) -> None:
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={READER_BUSY_TIMEOUT_MS}")
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the state store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            # One snapshot for the whole block; COMMIT ends it so the next block sees newer commits.
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:  # an error may already have ended it
                    conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if self._closed or len(self._idle) >= MAX_IDLE_READERS:
                conn.close()
            else:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
