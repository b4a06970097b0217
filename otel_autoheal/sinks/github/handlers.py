"""One handler per outbox command: the GitHub calls that carry it out, and the note it ends with.

A handler returns a short note (stored with the done item), raises ``Deferred`` to come back
later, ``Stopping`` when the sink closes, or lets a GitHub error through for the worker's failure
policy. Every write is paced (``Pacer.write``) and counted as an attempt just before it is sent;
a retried comment looks for its outbox token first, a retried create for its header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from otel_autoheal.sinks.github import enact, messages, policy
from otel_autoheal.sinks.github import handoff as _handoff
from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.client import COPILOT_LOGINS, GitHubClient, classify
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import ClaimLost, GitHubLedger
from otel_autoheal.sinks.github.markers import replace_data
from otel_autoheal.sinks.github.pacing import Deferred, Pacer, Stopping
from otel_autoheal.sinks.github.records import OutboxItem
from otel_autoheal.sinks.github.status import SinkHealth
from otel_autoheal.sinks.github.tracker import IssueTracker
from otel_autoheal.state import Store

__all__ = ["Handlers"]

logger = logging.getLogger("otel_autoheal.sinks.github")

#: Hand-off outcomes that leave an error to show in ``status``.
_HANDOFF_FAILURES = ("forbidden", "failed", "not_assignable")


class Handlers:
    """Carries out outbox items: ``run(item, number)`` dispatches on ``item.kind``."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: GitHubLedger,
        client: GitHubClient,
        config: GitHubConfig,
        budget: Budget,
        pacer: Pacer,
        tracker: IssueTracker,
        health: SinkHealth,
        fixes_changed: Callable[[], None],
    ) -> None:
        self.store, self.ledger, self.client, self.config = store, ledger, client, config
        self.budget, self.pacer, self.tracker, self.health = budget, pacer, tracker, health
        self._fixes_changed = fixes_changed
        self._by_kind: dict[str, Callable[[OutboxItem, int | None], str]] = {
            "create": self.create,
            "comment": self.comment,
            "check": self.check,
            "reopen": self.reopen,
            "handoff": self.handoff,
            "verify": self.verify,
            "data": self.data,
        }

    def run(self, item: OutboxItem, number: int | None) -> str:
        """Carry out ``item`` on the issue ``number`` (None: not filed yet)."""
        return self._by_kind[item.kind](item, number)

    def _post_comment(self, item: OutboxItem, number: int, text: str) -> None:
        token = messages.outbox_token(item.id)
        if item.attempts > 0 and self.client.comment_exists(number, token, item.created, self.tracker.own_login()):
            return
        with self.pacer.write("comment"):
            self.ledger.begin_attempt(item.id)
            self.client.comment(number, text)

    def create(self, item: OutboxItem, number: int | None) -> str:
        fp, p = item.fingerprint, item.payload
        if number is not None:
            return f"already filed as #{number}"
        # A retry may have reached GitHub; a first attempt may predate a lost state database.
        found = None
        if item.attempts > 0 or self.config.search_before_create:
            login = self.tracker.own_login()
            if login is None:
                logger.warning("cannot look for an existing issue of %s: the token's login is unknown (GET /user is "
                               "forbidden; set AUTOHEAL_GITHUB_LOGIN)", fp[:12])
            else:
                found = self.client.find_issue_by_marker(
                    fp, item.created if item.attempts > 0 else None, login, before_search=self.pacer.search_slot
                )
        if found is not None:
            with self.ledger.unit() as u:  # it may have been closed: read its state now
                u.set_issue(fp, issue_number=found, state_checked_at=0.0)
                u.merge("check", fp, {"version": p.get("version", ""), "ts": item.created, "body": p["body"],
                                      "count": 1})
            logger.info("found existing issue #%s for %s", found, fp[:12])
            return f"found existing #{found}"
        for label in p["labels"]:
            if self.ledger.label_known(label):
                continue
            if not self.client.label_exists(label):
                with self.pacer.write("label"):
                    self.client.create_label(label, messages.LABEL_COLOR, messages.LABEL_DESCRIPTION)
            self.ledger.remember_label(label)
        with self.pacer.write("issue"):
            self.ledger.begin_attempt(item.id)
            n, author = self.client.create_issue(p["title"], p["body"], p["labels"])
        self.ledger.update_issue(fp, issue_number=n, state="open", state_checked_at=time.time())
        if self.health.identity is None and author:
            self.tracker.learn_login(author, "the author of the issue it filed")
        logger.info("filed issue #%s for %s", n, fp[:12])
        return f"filed #{n}"

    def check(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        row = self.tracker.refresh(item.fingerprint, number).row
        p = item.payload
        if row.state != "closed":
            return "open"
        if row.muted:
            return "closed as not planned: muted"
        if p.get("ts", 0) > (row.closed_at or 0):
            with self.ledger.unit() as u:
                verdict = enact.regresses(u, row, p.get("version", ""))
                if verdict.reopens:
                    u.merge("reopen", item.fingerprint, p)
                    return "regression: reopen queued"
                enact.store_fix_changes(u, item.fingerprint, policy.stale(verdict))
        return "closed; occurrence older than the closing version"

    def comment(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, p = item.fingerprint, item.payload
        row = self.ledger.get_issue(fp)
        assert row is not None
        now = time.time()
        if now - row.state_checked_at >= self.config.state_check_interval:
            row = self.tracker.refresh(fp, number).row
        if row.state == "closed":
            if row.muted:
                return "muted (closed as not planned): not commented"
            with self.ledger.unit() as u:
                if enact.regresses(u, row, p.get("version", "")).reopens:
                    u.merge("reopen", fp, {k: v for k, v in p.items() if k != "reasons"})
                    return "issue closed: reopen queued instead"
            return "issue closed; occurrence older than the closing version: not commented"
        due = policy.comment_due(row, self.config)
        if due > now:
            raise Deferred(due, "coalescing: comment interval not over")
        headline = messages.milestone_headline(p.get("reasons", []), p.get("count", row.count), p.get("version") or "")
        self._post_comment(item, number, messages.comment_text(item.id, headline, str(p.get("body", ""))))
        self.ledger.update_issue(fp, last_comment_at=time.time())
        return "commented"

    def reopen(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, p = item.fingerprint, item.payload
        row = self.tracker.refresh(fp, number).row
        if row.state == "closed":
            if row.muted:
                return "muted (closed as not planned): not reopened"
            with self.ledger.unit() as u:
                reopens = enact.regresses(u, row, p.get("version", "")).reopens
            if not reopens:
                return "occurrence older than the closing version: not reopened"
            if not p.get("reopened"):
                with self.pacer.write("edit"):
                    self.ledger.begin_attempt(item.id)
                    self.client.reopen(number)
                with self.ledger.unit() as u:
                    u.set_payload(item.id, {**p, "reopened": True})
        elif not p.get("reopened") and item.attempts == 0:
            return "already open"
        with self.ledger.unit() as u:
            fix = u.fix_for_close(fp, row.closed_at) if row.closed_at is not None else None
        headline = messages.reopen_headline(fix, p.get("version") or "", p.get("count", row.count), row.closed_version)
        self._post_comment(item, number, messages.comment_text(item.id, headline, str(p.get("body", ""))))
        now = time.time()
        with self.ledger.unit() as u:
            if fix is not None:
                u.set_fix(fix.id, state="regressed", regressed_version=p.get("version") or "")
            u.set_issue(fp, state="open", state_reason="reopened", last_comment_at=now, state_checked_at=now)
        logger.info("reopened issue #%s (regression of %s)", number, fp[:12])
        return "reopened"

    def verify(self, item: OutboxItem, number: int | None) -> str:
        """Post the one closing comment of a fix whose group stayed silent for the whole window."""
        assert number is not None
        fp = item.fingerprint
        row = self.tracker.refresh(fp, number).row  # reopened meanwhile by someone: the fix ended there
        with self.ledger.unit() as u:
            fix = u.fix_by_id(int(item.payload.get("fix", 0)))
        if fix is None or fix.state != "verifying":
            return f"fix is {fix.state if fix else 'gone'}: no closing comment"
        if row.state != "closed":
            return "issue open again: no closing comment"
        group = self.store.group_by_fingerprint(fp)
        if group is None:
            return "group gone: no closing comment"
        now = time.time()
        due = policy.verify_due(fix, group.last_seen, self.config.verify_window, now)
        if item.attempts == 0 and due > now:  # an (older-version) occurrence since it was queued
            with self.ledger.unit() as u:
                u.set_fix(fix.id, state="deployed")
            self._fixes_changed()
            return "not silent for the whole window yet"
        text = messages.outbox_token(item.id) + "\n" + messages.verification_text(fix, group, now)
        self._post_comment(item, number, text)
        with self.ledger.unit() as u:
            u.set_fix(fix.id, state="verified")
            u.set_issue(fp, last_comment_at=time.time())
        logger.info("fix for issue #%s verified (%s)", number, messages.fix_reference(fix))
        return "fix verified: closing comment posted"

    def handoff(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, cfg = item.fingerprint, self.config
        fresh = self.tracker.refresh(fp, number)
        if fresh.row.state == "closed":
            return self._handoff_outcome(fp, "skipped_closed")
        if any(a in COPILOT_LOGINS for a in fresh.assignees):
            return self._handoff_outcome(fp, "already_assigned")
        if not self.tracker.still_ours(fresh, fp):
            return self._handoff_outcome(fp, "skipped_unverified", "the issue's author or header is not ours")
        prs = self.client.open_pr_references(number)
        if prs:
            return self._handoff_outcome(fp, "skipped_open_pr", f"open PR #{prs[0]} references the issue")
        assignment = _handoff.agent_assignment(cfg)
        if cfg.handoff_dry_run:
            logger.info(
                "dry run: would assign issue #%s to %s with agent_assignment target_repo=%s base_branch=%s",
                number,
                "copilot-swe-agent[bot]",
                assignment["target_repo"],
                assignment.get("base_branch", "(default)"),
            )
            return self._handoff_outcome(fp, "dry_run")
        wait = self.budget.take("handoff")  # checked and counted at once: the daily budget is the deployment's
        if wait > 0:
            raise Deferred(time.time() + wait, "daily hand-off budget used up")
        try:
            with self.pacer.write("assign"):
                self.ledger.begin_attempt(item.id)
                logins = self.client.assign_copilot(number, assignment)
        except (Stopping, ClaimLost):
            raise
        except Exception as exc:
            f = classify(exc)
            if f.kind == "forbidden":
                self.health.handoff_failed(f"issue #{number}: {f.message}. {messages.FORBIDDEN_HELP}")
                logger.error("Copilot hand-off refused: %s", self.health.handoff_error)
                return self._handoff_outcome(fp, "forbidden")
            if f.kind in ("rejected", "not_found"):
                self.health.handoff_failed(f"issue #{number}: {f.message}")
                return self._handoff_outcome(fp, "failed")
            raise
        if not any(a in COPILOT_LOGINS for a in logins):
            self.health.handoff_failed(f"issue #{number}: {messages.NOT_ASSIGNABLE_HELP}")
            logger.error("Copilot hand-off had no effect: %s", self.health.handoff_error)
            return self._handoff_outcome(fp, "not_assignable")
        logger.info("assigned issue #%s to the Copilot coding agent", number)
        return self._handoff_outcome(fp, "assigned")

    def data(self, item: OutboxItem, number: int | None) -> str:
        """Rewrite the ``autoheal:data`` block (line 2) with the group's current facts for the gate."""
        assert number is not None
        fresh = self.tracker.refresh(item.fingerprint, number)
        if fresh.row.state == "closed":
            return "issue closed: data block left as it was"
        if not self.tracker.still_ours(fresh, item.fingerprint):
            return "the issue's author or header is not ours: data block not refreshed"
        body = str(fresh.issue.get("body") or "")
        new = replace_data(body, item.payload)
        if new is None or new == body:
            return "data block already current"
        with self.pacer.write("edit"):
            self.ledger.begin_attempt(item.id)
            self.client.update_body(number, new)
        return "data block refreshed"

    def _handoff_outcome(self, fp: str, outcome: str, note: str = "") -> str:
        self.ledger.update_issue(fp, handoff=outcome)
        return f"handoff {outcome}{': ' + note if note else ''}"
