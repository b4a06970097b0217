"""What GitHub says about our issues: their state (closes, reopens, the fix behind a close) and who we are.

Issues are read one at a time before a handler acts on them (``refresh``) and in bulk by the
poll of recently updated issues (``poll``); both go through ``apply_issue``, which stores the
state and, on a new close as completed, the merged PR found in the timeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from otel_autoheal.sinks.github import fixes as _fixes
from otel_autoheal.sinks.github.client import GitHubClient, is_ours
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import GitHubLedger
from otel_autoheal.sinks.github.markers import parse_header
from otel_autoheal.sinks.github.pacing import Pacer
from otel_autoheal.sinks.github.records import IssueRow
from otel_autoheal.sinks.github.status import SinkHealth
from otel_autoheal.sinks.github.versions import newest_version

__all__ = ["Fresh", "IssueTracker"]

logger = logging.getLogger("otel_autoheal.sinks.github")

#: Pages of 100 updated issues read per poll at most.
_POLL_PAGES = 10


@dataclass(frozen=True)
class Fresh:
    """An issue just read from GitHub: what we stored from it, and GitHub's own answer."""

    row: IssueRow
    issue: Mapping[str, Any]

    @property
    def assignees(self) -> list[str]:
        return [str(a.get("login")) for a in self.issue.get("assignees") or []]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class IssueTracker:
    """Reads issues and the token's identity from GitHub and keeps the ledger's view of them current."""

    def __init__(
        self,
        ledger: GitHubLedger,
        client: GitHubClient,
        config: GitHubConfig,
        health: SinkHealth,
        pacer: Pacer,
        fix_found: Callable[[], None],
    ) -> None:
        self.ledger, self.client, self.config, self.health, self.pacer = ledger, client, config, health, pacer
        #: Called when a close by a merged fix was stored: the fix bookkeeping has work.
        self._fix_found = fix_found
        self._user_forbidden = False

    # ----------------------------------------------------------- identity

    def learn_login(self, login: str, how: str) -> None:
        self.health.identity = login
        self.ledger.set_meta("github_login", login)
        logger.info("GitHub identity of the token: %s (%s)", login, how)

    def own_login(self) -> str | None:
        """The login the token files as: configured, else ``GET /user`` (once), else learned earlier.

        A GitHub App installation token may not read ``GET /user`` (403); its login is then the
        author of the first issue this sink filed, remembered in the state database.
        """
        if self.health.identity is not None:
            return self.health.identity
        if not self._user_forbidden:
            login = self.client.authenticated_login()
            if login is not None:
                self.learn_login(login, "GET /user")
                return login
            self._user_forbidden = True
            logger.info("GET /user is not allowed for this token (GitHub App?); using the login learned from an "
                        "issue it filed, or AUTOHEAL_GITHUB_LOGIN")
        stored = self.ledger.meta("github_login")
        if stored:
            self.health.identity = stored
        return self.health.identity

    def still_ours(self, fresh: Fresh, fp: str) -> bool:
        """The issue just read is authored by us and starts with this group's header."""
        login = self.own_login()
        if login is None:  # unknown identity: the number came from our own map; check the header only
            data = parse_header(fresh.issue.get("body"))
            return data is not None and data.get("fingerprint") == fp
        return is_ours(fresh.issue, fp, login)

    # ----------------------------------------------------------- issue state

    def refresh(self, fp: str, number: int) -> Fresh:
        """Read the issue from GitHub and remember its state (see ``apply_issue``)."""
        data = self.client.get_issue(number)
        return Fresh(self.apply_issue(fp, data), data)

    def apply_issue(self, fp: str, data: Mapping[str, Any]) -> IssueRow:
        """Remember an issue's state as GitHub reports it; on a new close, the closing version and fix.

        A close as completed is looked up in the timeline (before anything is stored, so a failed
        read leaves the close to be seen again). Reopened by anyone: the fix in force has ended.
        """
        row = self.ledger.get_issue(fp)
        assert row is not None
        now = time.time()
        if data.get("state") == "closed":
            closed_at = _fixes.parse_time(data.get("closed_at")) or now
            reason = data.get("state_reason") or "completed"
            new_close = row.state != "closed" or row.closed_at is None or abs(row.closed_at - closed_at) > 1
            merged = None
            if new_close and reason == "completed" and row.issue_number is not None:
                merged = _fixes.find_merged_fix(
                    self.client.timeline(row.issue_number), closed_at, self.config.repository, self.client.get_pull
                )
            with self.ledger.unit() as u:
                closed_version = row.closed_version
                if new_close:
                    closed_version = newest_version(u.versions_seen_by(fp, closed_at))
                    u.end_fixes(fp, "reopened")  # a fix of an earlier close no longer holds it closed
                    if merged is not None:
                        u.add_fix(fp, closed_at, merged.pr_number, merged.commit_sha, merged.merged_at, "merged")
                u.set_issue(fp, state="closed", state_reason=reason, closed_at=closed_at,
                            closed_version=closed_version, state_checked_at=now)
            if merged is not None and new_close:
                by = f"PR #{merged.pr_number}" if merged.pr_number is not None else f"commit {merged.commit_sha[:12]}"
                logger.info("issue #%s closed by %s; waiting for a version carrying it", row.issue_number, by)
                self._fix_found()
        else:
            with self.ledger.unit() as u:
                if row.state == "closed":
                    u.end_fixes(fp, "reopened")
                u.set_issue(fp, state="open", state_reason=data.get("state_reason") or "", state_checked_at=now)
        row = self.ledger.get_issue(fp)
        assert row is not None
        return row

    def poll(self) -> None:
        """List the issues updated since the last look and take in their state (closes, reopens, fixes)."""
        by_number = {n: fp for fp, n in self.ledger.issue_numbers().items()}
        if not by_number:
            return
        since = self.ledger.meta("issue_poll_since")
        if not since:
            since = _iso((self.ledger.first_filed_at() or time.time()) - 120)
        newest = since
        for page in range(1, _POLL_PAGES + 1):
            self.pacer.check()
            items = self.client.issues_updated_since(since, page)
            for it in items:
                fp = by_number.get(int(it.get("number") or 0))
                if fp is not None and "pull_request" not in it:
                    self.apply_issue(fp, it)
                # ISO 8601 UTC timestamps order as strings; GitHub's own clock, so no skew.
                newest = max(newest, str(it.get("updated_at") or newest))
            if len(items) < 100:
                break
        self.ledger.set_meta("issue_poll_since", newest)
