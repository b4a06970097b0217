"""Carrying out the policy's decisions on the ledger: the facts loaded, the commands queued.

The bridge between ``policy`` (pure) and ``ledger`` (storage): each function runs inside one
ledger unit of work, so what a decision read and what it wrote commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from otel_autoheal.model import GroupUpdate
from otel_autoheal.sinks.github import policy
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import GitHubLedger, LedgerUnit
from otel_autoheal.sinks.github.messages import fix_reference
from otel_autoheal.sinks.github.records import IssueRow

__all__ = ["IDLE_POLL", "history", "housekeep", "queue", "record", "regresses", "store_fix_changes"]

logger = logging.getLogger("otel_autoheal.sinks.github")

#: The longest the worker sleeps without looking at the outbox and the fixes again.
IDLE_POLL = 30.0


def history(u: LedgerUnit, row: IssueRow) -> policy.History:
    """What the regression rule reads for the closed issue ``row``."""
    fp = row.fingerprint
    return policy.History(
        fix=u.fix(fp),
        seen_by_close=tuple(v for v, _ in u.versions_seen_by(fp, row.closed_at or 0)),
        service_versions=tuple(u.service_versions(fp)),
    )


def store_fix_changes(u: LedgerUnit, fp: str, changes: Iterable[policy.FixChange]) -> None:
    for change in changes:
        u.set_fix(change.fix_id, **change.values)
        if change.values.get("state") == "deployed":
            fix = u.fix_by_id(change.fix_id)
            assert fix is not None
            logger.info("fix for %s (%s) deployed in version %s", fp[:12], fix_reference(fix), fix.fix_version)


def regresses(u: LedgerUnit, row: IssueRow, version: str) -> policy.Verdict:
    """``policy.regresses`` on the stored history; a fix found deployed meanwhile is stored as such."""
    verdict = policy.regresses(row, version, history(u, row))
    store_fix_changes(u, row.fingerprint, verdict.changes)
    return verdict


def queue(u: LedgerUnit, fp: str, commands: Iterable[policy.Command]) -> None:
    for command in commands:
        if command.fold:
            u.merge(command.kind, fp, command.payload)
        else:
            u.enqueue(command.kind, fp, command.payload)


def record(ledger: GitHubLedger, update: GroupUpdate, config: GitHubConfig, now: float) -> None:
    """Decide what ``update`` asks of GitHub and store it, in one transaction."""
    fp = update.group.fingerprint
    version = update.occurrence.exception.service_version
    with ledger.unit() as u:
        u.set_issue(fp)
        if version:
            u.see_version(fp, version, now)
        row = u.issue(fp)
        assert row is not None
        filed = row.issue_number is not None
        queued = not filed and u.pending_item("create", fp) is not None
        stored = policy.Stored(
            issue=row,
            create_queued=queued,
            create_failed=not filed and not queued and u.has_failed("create", fp),
            history=history(u, row) if filed and row.state == "closed" else policy.History(),
        )
        decision = policy.decide(update, stored, config, now)
        u.set_issue(fp, **decision.issue)
        queue(u, fp, decision.commands)
        store_fix_changes(u, fp, decision.fix_changes)
    if decision.handoff_refusal:
        logger.info("not handing %s off to Copilot: %s", fp[:12], decision.handoff_refusal)


def housekeep(ledger: GitHubLedger, window: float, now: float) -> float:
    """Settle deploys of merged fixes and queue the closing comments that are due (no GitHub call).

    Returns the seconds until the next closing comment is due (at most ``IDLE_POLL``).
    """
    wait = IDLE_POLL
    with ledger.unit() as u:
        for fix in u.fixes_in("merged", "deployed"):
            row = u.issue(fix.fingerprint)
            if row is None or row.state != "closed" or row.issue_number is None:
                continue
            settled = policy.settle(fix, u.service_versions(fix.fingerprint), row.closed_version)
            store_fix_changes(u, fix.fingerprint, policy.settle_change(fix, settled))
            if settled.state != "deployed" or window <= 0:
                continue
            due = policy.verify_due(settled, u.group_last_seen(fix.fingerprint), window, now)
            if due <= now:
                if u.pending_item("verify", fix.fingerprint) is None:
                    u.enqueue("verify", fix.fingerprint, {"fix": fix.id})
                u.set_fix(fix.id, state="verifying")
                wait = 0.0
            else:
                wait = min(wait, due - now)
    return wait
