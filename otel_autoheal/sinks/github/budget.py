"""Write budgets: GitHub's secondary limits, our own caps, and waits GitHub told us to make.

Writes are recorded (persistently, in the ledger) just *before* they are sent, so a
request that fails or times out still counts, as it may at GitHub. Budgets survive restarts and
are global: every instance sharing a database reads the same writes (and searches), and ``take``
checks and counts a write in one step under the ledger's budget lock, so two instances never both
get the last slot. The spacing runs from the later of the last write's start and the last answer.
"""

from __future__ import annotations

import time

from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import GitHubLedger

Writes = list[tuple[float, str]]

__all__ = ["Budget"]

#: Extra spacing on top of ``min_write_interval`` so jitter on the wire never brings two writes
#: closer than the interval at GitHub's end.
_SPACING_SLACK = 0.05
#: Likewise for the sliding minute/hour windows.
_WINDOW_SLACK = 0.5
#: GitHub allows 30 search requests per minute per user; we stay below, leaving room for others.
SEARCHES_PER_MINUTE = 20
_DAY = 86400.0
#: How far back the write budgets look (the hour, and the slack of its window).
_LOOKBACK = 3600 + 2 * _WINDOW_SLACK
#: Kinds counted in the ledger that are not content-creating writes.
_NOT_WRITES = ("handoff", "search")
#: Seconds a rate-limit block read from the ledger (set by another instance) is trusted.
_BLOCK_REFRESH = 1.0


class Budget:
    """Decides how long the next write has to wait."""

    def __init__(self, ledger: GitHubLedger, config: GitHubConfig) -> None:
        self.ledger = ledger
        self.config = config
        raw = ledger.meta("blocked_until")
        self.blocked_until = float(raw) if raw else 0.0
        self.blocked_reason = ledger.meta("blocked_reason") or ""
        self._last_end = 0.0
        self._block_read = time.monotonic()

    def block(self, until: float, reason: str) -> None:
        """GitHub asked us to stop (retry-after, rate limit reset): no request before ``until``."""
        if until > self.blocked_until:
            self.blocked_until, self.blocked_reason = until, reason
            self.ledger.set_meta("blocked_until", repr(until))
            self.ledger.set_meta("blocked_reason", reason)

    def _times(self, since: float, kinds: tuple[str, ...] | None = None) -> list[float]:
        return self.ledger.write_times(since, kinds)

    def writes_since(self, since: float) -> int:
        """Content-creating writes recorded after ``since``, counted on a read snapshot (for /metrics)."""
        return self.ledger.writes_since(since)

    def request_wait(self, now: float) -> float:
        """Seconds before any request (read or write) may be sent (a block by any instance counts)."""
        if time.monotonic() - self._block_read >= _BLOCK_REFRESH:
            self._block_read = time.monotonic()
            raw = self.ledger.meta("blocked_until")
            if raw and float(raw) > self.blocked_until:
                self.blocked_until, self.blocked_reason = float(raw), self.ledger.meta("blocked_reason") or ""
        return max(0.0, self.blocked_until - now)

    def _wait(self, writes: Writes, last_end: float, now: float, kind: str) -> float:
        """Seconds a request of ``kind`` must wait, given the writes of the last hour (all instances)."""
        cfg = self.config
        wait = max(0.0, self.blocked_until - now)  # refreshed by the caller: this runs inside a transaction
        if kind == "handoff":
            return max(wait, self._handoff_wait([t for t, k in writes if k == "handoff"], now))
        if kind == "search":
            searches = [t for t, k in writes if k == "search" and t > now - 60 - _WINDOW_SLACK]
            if len(searches) >= SEARCHES_PER_MINUTE:
                wait = max(wait, searches[-SEARCHES_PER_MINUTE] + 60 + _WINDOW_SLACK - now)
            return max(0.0, wait)
        hour = [t for t, k in writes if k not in _NOT_WRITES and t > now - 3600]
        last = max(hour[-1] if hour else 0.0, last_end, self._last_end)
        if last:
            wait = max(wait, last + cfg.min_write_interval + _SPACING_SLACK - now)
        minute = [t for t in hour if t > now - 60 - _WINDOW_SLACK]
        if len(minute) >= cfg.writes_per_minute:
            wait = max(wait, minute[-cfg.writes_per_minute] + 60 + _WINDOW_SLACK - now)
        if len(hour) >= cfg.writes_per_hour:
            wait = max(wait, hour[-cfg.writes_per_hour] + 3600 + _WINDOW_SLACK - now)
        if kind == "issue":
            issues = [t for t, k in writes if k == "issue" and t > now - 3600]
            if len(issues) >= cfg.new_issues_per_hour:
                wait = max(wait, issues[-cfg.new_issues_per_hour] + 3600 - now)
        return max(0.0, wait)

    def write_wait(self, now: float, kind: str) -> float:
        """Seconds before a write of ``kind`` (issue, comment, label, edit, assign) may be sent."""
        self.request_wait(now)
        writes, last_end = self.ledger.recent_writes(now - _LOOKBACK)
        return self._wait(writes, last_end, now, kind)

    def search_wait(self, now: float) -> float:
        """Seconds before an issue search may be sent (search has its own, lower limit)."""
        return self.write_wait(now, "search")

    def take(self, kind: str, now: float | None = None) -> float:
        """Count a request of ``kind`` (a write, or ``search``) if the budget has room now; else the
        seconds to wait (nothing counted). Check and count are one step for all instances."""
        now = time.time() if now is None else now
        self.request_wait(now)
        since = now - (_DAY if kind == "handoff" else _LOOKBACK)
        return self.ledger.reserve_write(kind, now, since, now - 2 * _DAY,
                                         lambda writes, last_end: self._wait(writes, last_end, now, kind))

    def record_search(self, now: float | None = None) -> None:
        self.record("search", now)

    def write_finished(self, now: float | None = None) -> None:
        """A write's response arrived (or it failed): the spacing to the next write starts now."""
        self._last_end = time.time() if now is None else now
        self.ledger.write_ended(self._last_end)

    def handoff_wait(self, now: float) -> float:
        """Seconds until the daily hand-off budget has room (inf when the budget is 0)."""
        return self._handoff_wait(self._times(now - _DAY, ("handoff",)), now)

    def _handoff_wait(self, day: list[float], now: float) -> float:
        if self.config.handoff_daily_budget <= 0:
            return float("inf")
        if len(day) < self.config.handoff_daily_budget:
            return 0.0
        return day[-self.config.handoff_daily_budget] + _DAY - now

    def record(self, kind: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.ledger.record_write(kind, now, forget_before=now - 2 * _DAY)

    def usage(self, now: float | None = None) -> dict[str, object]:
        now = time.time() if now is None else now
        hour = self._times(now - 3600)
        return {
            "writes_last_minute": sum(1 for t in hour if t > now - 60),
            "writes_last_hour": len(hour),
            "new_issues_last_hour": len(self._times(now - 3600, ("issue",))),
            "handoffs_last_day": len(self._times(now - _DAY, ("handoff",))),
            "blocked_for_seconds": round(max(0.0, self.blocked_until - now), 1),
            "blocked_reason": self.blocked_reason if self.blocked_until > now else "",
            "limits": {
                "writes_per_minute": self.config.writes_per_minute,
                "writes_per_hour": self.config.writes_per_hour,
                "new_issues_per_hour": self.config.new_issues_per_hour,
                "min_write_interval": self.config.min_write_interval,
                "handoff_daily_budget": self.config.handoff_daily_budget,
            },
        }
