"""Write budgets: GitHub's secondary limits, our own caps, and waits GitHub told us to make.

Writes are recorded (persistently, in the ledger) just *before* they are sent, so a
request that fails or times out still counts, as it may at GitHub. Budgets survive restarts.
"""

from __future__ import annotations

import time
from collections import deque

from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import GitHubLedger

__all__ = ["Budget"]

#: Extra spacing on top of ``min_write_interval`` so jitter on the wire never brings two writes
#: closer than the interval at GitHub's end.
_SPACING_SLACK = 0.05
#: Likewise for the sliding minute/hour windows.
_WINDOW_SLACK = 0.5
#: GitHub allows 30 search requests per minute per user; we stay below, leaving room for others.
SEARCHES_PER_MINUTE = 20
_DAY = 86400.0


class Budget:
    """Decides how long the next write has to wait."""

    def __init__(self, ledger: GitHubLedger, config: GitHubConfig) -> None:
        self.ledger = ledger
        self.config = config
        raw = ledger.meta("blocked_until")
        self.blocked_until = float(raw) if raw else 0.0
        self.blocked_reason = ledger.meta("blocked_reason") or ""
        self._last_end = 0.0
        self._searches: deque[float] = deque()

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
        """Seconds before any request (read or write) may be sent."""
        return max(0.0, self.blocked_until - now)

    def write_wait(self, now: float, kind: str) -> float:
        """Seconds before a write of ``kind`` (issue, comment, label, edit, assign) may be sent."""
        cfg = self.config
        wait = self.request_wait(now)
        hour = self._times(now - 3600)
        last = max(hour[-1] if hour else 0.0, self._last_end)
        if last:
            wait = max(wait, last + cfg.min_write_interval + _SPACING_SLACK - now)
        minute = [t for t in hour if t > now - 60 - _WINDOW_SLACK]
        if len(minute) >= cfg.writes_per_minute:
            wait = max(wait, minute[-cfg.writes_per_minute] + 60 + _WINDOW_SLACK - now)
        if len(hour) >= cfg.writes_per_hour:
            wait = max(wait, hour[-cfg.writes_per_hour] + 3600 + _WINDOW_SLACK - now)
        if kind == "issue":
            issues = self._times(now - 3600, ("issue",))
            if len(issues) >= cfg.new_issues_per_hour:
                wait = max(wait, issues[-cfg.new_issues_per_hour] + 3600 - now)
        return max(0.0, wait)

    def search_wait(self, now: float) -> float:
        """Seconds before an issue search may be sent (search has its own, lower limit)."""
        while self._searches and self._searches[0] <= now - 60 - _WINDOW_SLACK:
            self._searches.popleft()
        if len(self._searches) < SEARCHES_PER_MINUTE:
            return self.request_wait(now)
        return max(self.request_wait(now), self._searches[0] + 60 + _WINDOW_SLACK - now)

    def record_search(self, now: float | None = None) -> None:
        self._searches.append(time.time() if now is None else now)

    def write_finished(self, now: float | None = None) -> None:
        """A write's response arrived (or it failed): the spacing to the next write starts now."""
        self._last_end = time.time() if now is None else now

    def handoff_wait(self, now: float) -> float:
        """Seconds until the daily hand-off budget has room (inf when the budget is 0)."""
        if self.config.handoff_daily_budget <= 0:
            return float("inf")
        day = self._times(now - _DAY, ("handoff",))
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
