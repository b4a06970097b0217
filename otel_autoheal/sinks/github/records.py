"""What the GitHub sink stores, as plain values: outbox items, the issue map's rows and fixes.

These are the types the ledger (``ledger.GitHubLedger``) hands out and the decision policy
(``policy``) reads; neither module needs the other's internals to use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ACTIVE_FIX_STATES", "CLOSED_AT_SLACK", "FixRow", "IssueRow", "OutboxItem"]

#: GitHub reports ``closed_at`` in whole seconds: a version first seen up to this long after the
#: reported close counts as seen before it.
CLOSED_AT_SLACK = 1.0

#: Fix states while the issue stays closed by that fix: ``merged`` (no version carrying it seen
#: yet), ``deployed`` (watching for silence), ``verifying`` (closing comment queued), ``verified``.
#: A fix ends as ``regressed`` (we reopened the issue) or ``reopened`` (someone else did).
ACTIVE_FIX_STATES = ("merged", "deployed", "verifying", "verified")


@dataclass(frozen=True)
class OutboxItem:
    """One pending GitHub write (or read that may lead to one)."""

    id: int
    kind: str  # create | comment | check | reopen | handoff | verify | data
    fingerprint: str
    payload: dict[str, Any]
    attempts: int
    retries: int
    not_before: float
    created: float


@dataclass(frozen=True)
class IssueRow:
    """What the sink knows about one group's GitHub issue."""

    fingerprint: str
    issue_number: int | None
    source: str
    count: int
    newest_version: str
    state: str
    state_reason: str
    closed_at: float | None
    closed_version: str
    state_checked_at: float
    last_comment_at: float
    milestone: int
    has_in_app: bool
    handoff: str
    #: The service's verdict on where the group's data came from (None: not known yet). Once an
    #: occurrence from an untrusted origin joins the group it stays untrusted.
    trusted: bool | None = None
    #: What the verdict rests on: ``receiver`` (the ingest path said so) or ``attribute``
    #: (only the sender's ``autoheal.source``; see ``handoff.provenance``).
    provenance: str = ""

    @property
    def muted(self) -> bool:
        return self.state == "closed" and self.state_reason == "not_planned"


@dataclass(frozen=True)
class FixRow:
    """The change that closed an issue: a merged PR (or a commit) and the version that carries it."""

    id: int
    fingerprint: str
    closed_at: float
    pr_number: int | None
    commit_sha: str
    merged_at: float
    base_version: str
    fix_version: str
    deployed_at: float | None
    state: str
    stale: int
    regressed_version: str
