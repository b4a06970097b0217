"""The GitHub sink's worker thread: which outbox item runs when, and what a failure means for it.

Scheduling: nothing while paused or while GitHub asked us to wait; the repository is checked
once; the fix bookkeeping (``enact.housekeep``) and the poll of updated issues run when due;
then the oldest due item whose budgets allow it runs, once this instance has claimed it (several
instances sharing PostgreSQL: each item is worked by one; the poll and the fix bookkeeping run on
the instance that ``leads``). Failures (``client.classify``): transient
-> retried with jittered exponential backoff; rate limited -> every request waits until GitHub's
reset; a wrong setting (401, unknown repository) or a token that may not write -> the sink
pauses until restarted; anything else -> the item is given up (``failed``).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from otel_autoheal.sinks.github import enact
from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.client import Failure, GitHubClient, classify
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.handlers import Handlers
from otel_autoheal.sinks.github.ledger import ClaimLost, GitHubLedger
from otel_autoheal.sinks.github.pacing import Deferred, Stopping
from otel_autoheal.sinks.github.records import OutboxItem
from otel_autoheal.sinks.github.status import SinkHealth
from otel_autoheal.sinks.github.tracker import IssueTracker

__all__ = ["Worker"]

logger = logging.getLogger("otel_autoheal.sinks.github")

_PAUSED_POLL = 3600.0
#: The budget each command kind's write counts against ("": it writes nothing itself).
_WRITE_KIND = {"create": "issue", "comment": "comment", "reopen": "edit", "handoff": "assign", "check": "",
               "verify": "comment", "data": "edit"}
#: Local bookkeeping of fixes (deploys, due closing comments) runs at most this often while
#: occurrences arrive; otherwise when the next closing comment is due.
_HOUSEKEEP_MIN = 0.5


class Worker:
    """Runs the outbox against GitHub on its own thread until ``stop``."""

    def __init__(
        self,
        *,
        ledger: GitHubLedger,
        client: GitHubClient,
        config: GitHubConfig,
        budget: Budget,
        health: SinkHealth,
        tracker: IssueTracker,
        handlers: Handlers,
        stop: threading.Event,
    ) -> None:
        self.ledger, self.client, self.config, self.budget = ledger, client, config, budget
        self.health, self.tracker, self.handlers = health, tracker, handlers
        self._stop = stop
        self.wake = threading.Event()
        self._repo_checked = False
        self._dirty = True
        self._housekept = 0.0
        self._housekeep_at = 0.0
        self._next_poll = time.time() + config.issue_poll_interval

    def mark_dirty(self) -> None:
        """Occurrences or fixes changed: run the fix bookkeeping soon."""
        self._dirty = True

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Stopping:
                break
            except Exception as exc:  # keep the worker alive; the item stays pending
                logger.exception("GitHub sink worker error")
                self.health.error(f"worker error: {type(exc).__name__}: {exc}")
                wait = 1.0
            if wait > 0:
                self.wake.wait(min(wait, enact.IDLE_POLL))
                self.wake.clear()

    def step(self) -> float:
        """Do the next piece of work that is due; returns how long to sleep before looking again."""
        if self.health.paused:
            return _PAUSED_POLL
        now = time.time()
        if self.budget.request_wait(now) > 0:
            return self.budget.request_wait(now)
        if not self._repo_checked:
            try:
                self.client.check_repository()
                self._repo_checked = True
            except Exception as exc:
                f = classify(exc)
                if f.kind == "not_found":
                    f = Failure("config", self._repo_help(f.message), 404)
                return self._apply_failure(None, f)
        best = enact.IDLE_POLL
        if self.ledger.leads():
            best = min(best, self._housekeeping(now))
            if self.config.issue_poll_interval > 0:
                if now >= self._next_poll:
                    self._poll(now)
                    return 0.0
                best = min(best, self._next_poll - now)
        numbers = self.ledger.issue_numbers()
        for item in self.ledger.pending():
            if item.not_before > now:
                best = min(best, item.not_before - now)
                continue
            if item.kind != "create" and item.fingerprint not in numbers:
                # In this order: another instance may file the issue meanwhile (number set, then done).
                if not self.ledger.has_pending("create", item.fingerprint) and self._unfiled(item.fingerprint):
                    self.ledger.fail(item.id, "the issue for this group was never created")
                continue
            if item.kind == "handoff" and not self.config.handoff_dry_run:
                hw = self.budget.handoff_wait(now)
                if hw > 0:
                    best = min(best, hw)
                    continue
            kind = _WRITE_KIND[item.kind]
            w = self.budget.write_wait(now, kind) if kind else 0.0
            if item.kind == "create" and (item.attempts > 0 or self.config.search_before_create):
                w = max(w, self.budget.search_wait(now))
            if w > 0:
                best = min(best, w)
                continue
            claimed = self.ledger.claim(item.id)
            if claimed is None:  # another instance took it (or finished it) meanwhile
                continue
            row = self.ledger.get_issue(claimed.fingerprint)
            self._process(claimed, row.issue_number if row else None)
            return 0.0
        return best

    def _unfiled(self, fingerprint: str) -> bool:
        row = self.ledger.get_issue(fingerprint)
        return row is None or row.issue_number is None

    def _process(self, item: OutboxItem, number: int | None) -> None:
        try:
            note = self.handlers.run(item, number)
        except Stopping:
            raise
        except ClaimLost as lost:
            logger.info("GitHub sink: %s; leaving it to that instance", lost)
            return
        except Deferred as d:
            self.ledger.defer(item.id, d.until, d.note, count_retry=False)
            return
        except Exception as exc:
            f = classify(exc)
            if f.kind == "not_found":
                f = self._explain_not_found(item, number, f)
            self._apply_failure(item, f)
            return
        self.ledger.done(item, note)

    def _apply_failure(self, item: OutboxItem | None, f: Failure) -> float:
        """Retry, wait, pause or give up, as ``f`` says; returns how long to sleep."""
        what = f"{item.kind} #{item.id}" if item else "repository check"
        msg = self.health.redact(f"{what}: {f.message}")
        self.health.error(msg)
        now = time.time()
        if f.kind == "transient":
            retries = item.retries if item else 0
            delay = float(min(self.config.backoff_max, self.config.backoff_base * (2 ** min(retries, 20))))
            delay *= random.uniform(0.5, 1.0)
            logger.warning("GitHub unavailable, retrying in %.1fs: %s", delay, msg)
            if item:
                self.ledger.defer(item.id, now + delay, msg, count_retry=True)
            return delay
        if f.kind == "rate_limited":
            until = f.retry_at or now + 60
            self.budget.block(until, msg)
            logger.warning("GitHub rate limit, waiting %.0fs: %s", until - now, msg)
            if item:
                self.ledger.defer(item.id, until, msg, count_retry=False)
            return until - now
        if f.kind == "forbidden" and item is not None and item.kind != "create" and "locked" in f.message.lower():
            f = Failure("rejected", f"{f.message} (the issue is locked)", f.status)
        if f.kind in ("config", "forbidden"):
            if f.kind == "forbidden":
                msg = self.health.redact(
                    f"{what}: {f.message} - the token cannot write issues in {self.config.repository}"
                    " (fine-grained PAT needs Issues: read and write, Metadata: read)"
                )
            self.health.pause(msg)
            logger.error("GitHub sink paused, fix the setting and restart: %s", msg)
            return _PAUSED_POLL
        if item:
            self.ledger.fail(item.id, msg)
        logger.error("GitHub sink gave up on %s", msg)
        return 0.0

    def _housekeeping(self, now: float) -> float:
        """Run the local fix bookkeeping when due; seconds until it is due again."""
        due = min(self._housekeep_at, self._housekept + _HOUSEKEEP_MIN) if self._dirty else self._housekeep_at
        if now >= due:
            self._dirty = False
            self._housekept = now
            self._housekeep_at = now + enact.housekeep(self.ledger, self.config.verify_window, now)
            due = self._housekeep_at
        return max(0.0, due - now)

    def _poll(self, now: float) -> None:
        """List the issues updated since the last look (``IssueTracker.poll``); a failure waits for the next."""
        self._next_poll = now + self.config.issue_poll_interval
        try:
            self.tracker.poll()
        except Stopping:
            raise
        except Exception as exc:
            f = classify(exc)
            if f.kind == "rate_limited":
                self._apply_failure(None, f)
            else:
                self.health.error(f"issue poll: {f.message}")
                logger.warning("GitHub issue poll failed, next in %.0fs: %s", self.config.issue_poll_interval,
                               f.message)

    def _repo_help(self, message: str) -> str:
        return (
            f"GITHUB_REPOSITORY: repository {self.config.repository!r} not found at {self.config.api_url}"
            f" or the token cannot see it ({message})"
        )

    def _explain_not_found(self, item: OutboxItem, number: int | None, f: Failure) -> Failure:
        if item.kind == "create" or number is None:
            return Failure("config", self._repo_help(f.message), 404)
        try:
            self.client.check_repository()
        except Exception as exc:
            g = classify(exc)
            return Failure("config", self._repo_help(g.message), 404) if g.kind == "not_found" else g
        return Failure("rejected", f"issue #{number} no longer exists (deleted or transferred)", 404)
