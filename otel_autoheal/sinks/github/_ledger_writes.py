"""The writes the GitHub sink made, as the budgets remember them: part of ``GitHubLedger`` (see its contract).

Rows of ``github_writes`` are ``(ts, kind)``; hand-offs and searches are counted there too but
kept apart from the content-creating writes. ``reserve_write`` is the budgets' check-and-count,
under the lock ``_lock_budget`` takes (none on SQLite, whose write transactions are serial).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["WriteLog"]

#: Kinds that are not content-creating requests: kept apart from the write budgets.
_NOT_WRITES = "('handoff', 'search')"


class WriteLog:
    """``GitHubLedger``'s methods on the writes made; the ledger supplies the transactions."""

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def record_write(self, kind: str, now: float, forget_before: float) -> None:
        """Count a write of ``kind`` sent at ``now``; forget the ones older than ``forget_before``."""
        with self._tx() as conn:
            conn.execute("INSERT INTO github_writes (ts, kind) VALUES (?, ?)", (now, kind))
            conn.execute("DELETE FROM github_writes WHERE ts < ?", (forget_before,))

    def write_times(self, since: float, kinds: Iterable[str] | None = None) -> list[float]:
        """When the writes after ``since`` were sent, oldest first: of ``kinds``, else all but hand-offs and searches."""
        with self._tx() as conn:
            if kinds is None:
                rows = conn.execute(
                    f"SELECT ts FROM github_writes WHERE ts > ? AND kind NOT IN {_NOT_WRITES} ORDER BY ts", (since,)
                )
            else:
                wanted = tuple(kinds)
                marks = ",".join("?" * len(wanted))
                rows = conn.execute(
                    f"SELECT ts FROM github_writes WHERE ts > ? AND kind IN ({marks}) ORDER BY ts", (since, *wanted)
                )
            return [float(r[0]) for r in rows]

    def writes_since(self, since: float) -> int:
        """Writes other than hand-offs sent after ``since``, counted on a read snapshot (for /metrics)."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT COUNT(*) FROM github_writes WHERE ts > ? AND kind NOT IN {_NOT_WRITES}", (since,)
            ).fetchone()
        return int(row[0])

    def recent_writes(self, since: float) -> tuple[list[tuple[float, str]], float]:
        """``(when, kind)`` of the writes after ``since``, oldest first, and when the last one ended."""
        with self._tx() as conn:
            return self._recent(conn, since)

    def reserve_write(self, kind: str, now: float, since: float, forget_before: float,
                      wait: Callable[[list[tuple[float, str]], float], float]) -> float:
        """Ask ``wait(recent_writes(since))`` how long a write of ``kind`` must wait; when it need
        not, count it at ``now``, all under the budget lock (see "Budgets"). Returns the wait."""
        with self._tx() as conn:
            self._lock_budget(conn)
            rows, last_end = self._recent(conn, since)
            delay = wait(rows, last_end)
            if delay <= 0:
                conn.execute("INSERT INTO github_writes (ts, kind) VALUES (?, ?)", (now, kind))
                if len(rows) % 64 == 0:
                    conn.execute("DELETE FROM github_writes WHERE ts < ?", (forget_before,))
            return delay

    def write_ended(self, now: float) -> None:
        """A write's answer arrived at ``now``: every instance measures the spacing from here."""
        with self._tx() as conn:
            self._lock_budget(conn)
            _, last_end = self._recent(conn, now)
            if now > last_end:
                conn.execute("INSERT INTO github_meta (key, value) VALUES ('last_write_end', ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (repr(now),))

    def _recent(self, conn: Any, since: float) -> tuple[list[tuple[float, str]], float]:
        rows = [(float(t), str(k)) for t, k in
                conn.execute("SELECT ts, kind FROM github_writes WHERE ts > ? ORDER BY ts", (since,)).fetchall()]
        end = conn.execute("SELECT value FROM github_meta WHERE key = 'last_write_end'").fetchone()
        return rows, float(end[0]) if end else 0.0

    def _lock_budget(self, conn: Any) -> None:
        """Serialise budget checks across instances (SQLite's write transaction already does)."""
