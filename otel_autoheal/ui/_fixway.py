"""The way to a fix of each group, read from the GitHub sink's tables: the page's only tie to the sink.

Everything the page knows about GitHub (issue numbers, the Copilot hand-off, fixes and their
verification, muted issues) comes through this module, using the sink's own ledger reads
(``issue``, ``fix``, ``change_mark``... of a ledger unit, made per backend by ``LEDGER_UNITS``) on
the page's read snapshot: every statement on the sink's tables is the ledger's, so a change to the
sink's storage stays in the sink. A state without the
GitHub tables (the local sink), or a backend without a ledger unit here, is all "local only".
Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from otel_autoheal.state._dialect import PortableConn

if TYPE_CHECKING:
    from otel_autoheal.sinks.github.records import FixRow, IssueRow

__all__ = ["LEDGER_UNITS", "STATES", "LedgerReads", "Way", "change_mark", "github_web_url", "has_github_tables",
           "timeline", "way_of", "ways", "ways_in_state"]

#: Every state a group can be in on its way to a fix, in the order the page lists them, with its label.
STATES: dict[str, str] = {
    "local": "local only",
    "queued": "waiting to be filed",
    "filed": "filed on GitHub",
    "copilot": "handed to Copilot",
    "pr_open": "PR open",
    "fix_merged": "fix merged, awaiting deploy",
    "fix_deployed": "fix deployed, watching",
    "verified": "verified",
    "regressed": "regressed",
    "closed": "closed",
    "muted": "muted",
}

_COPILOT = ("assigned", "already_assigned")


@dataclass(frozen=True)
class Way:
    """Where a group stands: ``state`` (a key of ``STATES``), its GitHub issue and fix, if any."""

    state: str
    issue_number: int | None = None
    pr_number: int | None = None
    handoff: str = ""
    fix_version: str = ""
    regressed_version: str = ""

    @property
    def label(self) -> str:
        return STATES[self.state]

    def as_json(self, web: str) -> dict[str, Any]:
        return {
            "state": self.state,
            "label": self.label,
            "github_issue": self.issue_number,
            "github_issue_url": f"{web}/issues/{self.issue_number}" if web and self.issue_number else None,
            "pr": self.pr_number,
            "pr_url": f"{web}/pull/{self.pr_number}" if web and self.pr_number else None,
            "handoff": self.handoff or None,
            "fix_version": self.fix_version or None,
            "regressed_version": self.regressed_version or None,
        }


class LedgerReads(Protocol):
    """The reads of the GitHub sink's ledger unit that the page uses."""

    def issue(self, fingerprint: str) -> IssueRow | None: ...

    def fix(self, fingerprint: str, active_only: bool = True) -> FixRow | None: ...

    def known_fingerprints(self) -> set[str]: ...

    def change_mark(self) -> float: ...

    def issue_created(self, fingerprint: str) -> float | None: ...

    def outbox_history(self, fingerprint: str) -> list[tuple[str, str, float, str]]: ...

    def fixes_of(self, fingerprint: str) -> list[FixRow]: ...


def _sql_unit(conn: PortableConn) -> LedgerReads:
    """The sink's unit: its reads are plain SQL with ``?`` placeholders, which ``conn`` runs on either backend."""
    from otel_autoheal.sinks.github._ledger_unit import SQLUnit  # only when the sink's tables exist

    return SQLUnit(conn)


#: The GitHub sink's ledger unit on a read connection, per backend (``Dialect.name``); a backend
#: missing here shows every group "local only", as does a database without the sink's tables.
LEDGER_UNITS: dict[str, Callable[[PortableConn], LedgerReads]] = {"sqlite": _sql_unit, "postgres": _sql_unit}


def _ledger(conn: PortableConn) -> LedgerReads:
    return LEDGER_UNITS[conn.dialect.name](conn)


def has_github_tables(conn: PortableConn) -> bool:
    """Whether the sink's tables are there and readable by the page on this backend."""
    if conn.dialect.name not in LEDGER_UNITS:
        return False
    return conn.execute(conn.dialect.table_exists, ("github_issues",)).fetchone() is not None


def _decide(issue: IssueRow | None, fix: FixRow | None) -> Way:
    if issue is None:
        return Way("local")
    if issue.issue_number is None:
        return Way("queued", handoff=issue.handoff)
    common: dict[str, Any] = {"issue_number": issue.issue_number, "handoff": issue.handoff,
                              "pr_number": fix.pr_number if fix else None,
                              "fix_version": fix.fix_version if fix else "",
                              "regressed_version": fix.regressed_version if fix else ""}
    if issue.muted:
        return Way("muted", **common)
    if issue.state == "closed":
        state = {"merged": "fix_merged", "deployed": "fix_deployed", "verifying": "fix_deployed",
                 "verified": "verified"}.get(fix.state if fix else "", "closed")
        return Way(state, **common)
    if fix is not None and fix.state == "regressed":
        return Way("regressed", **common)
    if issue.handoff == "skipped_open_pr":
        return Way("pr_open", **common)
    if issue.handoff in _COPILOT:
        return Way("copilot", **common)
    return Way("filed", **common)


def way_of(conn: PortableConn, fingerprint: str, github: bool) -> Way:
    """The group's way to a fix; ``github`` is ``has_github_tables(conn)``, asked once per page."""
    if not github:
        return Way("local")
    ledger = _ledger(conn)
    return _decide(ledger.issue(fingerprint), ledger.fix(fingerprint, active_only=False))


def ways(conn: PortableConn, fingerprints: list[str]) -> dict[str, Way]:
    github = has_github_tables(conn)
    return {fp: way_of(conn, fp, github) for fp in fingerprints}


def ways_in_state(conn: PortableConn, fingerprints: list[str], state: str) -> set[str]:
    """The fingerprints among ``fingerprints`` whose way is ``state``.

    Only groups the sink knows can be anywhere but "local", so only those are looked up one by one.
    """
    if not has_github_tables(conn):
        return set(fingerprints) if state == "local" else set()
    known = _ledger(conn).known_fingerprints()
    out = set()
    for fp in fingerprints:
        if fp not in known:
            if state == "local":
                out.add(fp)
        elif way_of(conn, fp, True).state == state:
            out.add(fp)
    return out


def change_mark(conn: PortableConn) -> float:
    """Moves when the sink performs a write, reads an issue's state or notices a fix; 0 without GitHub.

    For the page's live updates. Reading an issue's state moves it even when nothing changed (once
    per poll of the sink, 300 s by default): the page then fetches itself once for nothing.
    """
    return _ledger(conn).change_mark() if has_github_tables(conn) else 0.0


def timeline(conn: PortableConn, fingerprint: str) -> list[dict[str, Any]]:
    """What happened on GitHub for the group, oldest first: filing, writes, hand-off, fixes."""
    if not has_github_tables(conn):
        return []
    events: list[dict[str, Any]] = []
    ledger = _ledger(conn)
    issue = ledger.issue(fingerprint)
    if issue is not None and issue.issue_number is not None:
        events.append({"time": ledger.issue_created(fingerprint) or 0.0,
                       "what": f"filed as GitHub issue #{issue.issue_number}"})
        if issue.closed_at:
            reason = "muted (closed as not planned)" if issue.muted else "closed"
            events.append({"time": issue.closed_at, "what": reason + (f" in version {issue.closed_version}"
                                                                      if issue.closed_version else "")})
    for kind, state, updated, error in ledger.outbox_history(fingerprint):
        what = {"create": "issue", "comment": "comment", "check": "state check", "reopen": "reopen",
                "handoff": "Copilot hand-off", "verify": "verification comment", "data": "data block update"}
        text = f"{what.get(kind, kind)}: {state}"
        if kind == "handoff" and issue is not None and issue.handoff:
            text += f" ({issue.handoff.replace('_', ' ')})"
        if error and state != "done":
            text += f" — {error}"
        events.append({"time": updated, "what": text})
    for fix in ledger.fixes_of(fingerprint):
        by = f"PR #{fix.pr_number}" if fix.pr_number else f"commit {fix.commit_sha[:10]}"
        events.append({"time": fix.merged_at, "what": f"fix merged: {by}"})
        if fix.deployed_at:
            events.append({"time": fix.deployed_at, "what": f"fix deployed in version {fix.fix_version}"})
        if fix.state in ("verified", "regressed"):
            again = f" in version {fix.regressed_version}" if fix.regressed_version else ""
            events.append({"time": fix.deployed_at or fix.merged_at,
                           "what": "fix verified" if fix.state == "verified" else f"regressed{again}"})
    events.sort(key=lambda e: e["time"])
    return events


def github_web_url(sink: object) -> str:
    """``https://github.com/owner/name`` of the sink's repository ("" without a GitHub sink)."""
    config = getattr(sink, "config", None)
    repository = getattr(config, "repository", "") or ""
    if not repository:
        return ""
    api = str(getattr(config, "api_url", "") or "https://api.github.com").rstrip("/")
    web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
    return f"{web}/{repository}"
