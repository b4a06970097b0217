"""The GitHub sink's decision rules, as pure functions: facts in, outbox commands out.

Nothing here performs I/O, reads a clock or keeps state: the caller passes the group update,
what the ledger stored for the group (``Stored``) and the time, and carries out the ``Decision``
(``enact``). The rules (README, "Filing on GitHub"):

- a new group -> ``create``; the body starts with the header (``markers``) built here;
- the count reaches 10, 100, 1000... or a new ``service.version`` -> ``comment`` (pending comments
  of an issue are folded into one; the comment interval is the handler's, ``comment_due``);
- an occurrence of a closed issue -> ``reopen`` when it ``regresses`` (one rule, used by every
  path), else it is only counted against the fix in force (``stale``); closed as "not planned"
  (muted) never reopens. An open issue whose state is older than ``state_check_interval`` ->
  ``check`` (read it from GitHub);
- the facts the gate reads (occurrences past the threshold, a milestone, provenance, in-app
  frames) changed on an open issue -> ``data`` (rewrite line 2 of the body);
- hand-off mode ``copilot``, not decided yet and not muted -> ``handoff`` when the gate's rules
  (``handoff.refusal``) pass; a refusal that will not change by waiting is recorded instead;
- a fix is *deployed* once a newer version of the service is seen after its merge (``settle``);
  a deployed fix silent for ``verify_window`` gets its closing comment (``verify_due``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from otel_autoheal.model import GroupUpdate
from otel_autoheal.sinks.github import handoff as _handoff
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.fixes import deployed_version
from otel_autoheal.sinks.github.markers import parse_header, with_header
from otel_autoheal.sinks.github.messages import MAX_TITLE, UNTITLED, milestone_reason, version_reason
from otel_autoheal.sinks.github.records import FixRow, IssueRow
from otel_autoheal.sinks.github.versions import not_older

__all__ = [
    "Command",
    "Decision",
    "FixChange",
    "History",
    "Stored",
    "Verdict",
    "comment_due",
    "create_command",
    "data_block",
    "decide",
    "is_milestone",
    "regresses",
    "settle",
    "settle_change",
    "stale",
    "verify_due",
]

#: What a skipped hand-off is recorded as, per rule of ``handoff.refusal`` (``occurrences``: wait).
_SKIPPED = {"untrusted": "skipped_untrusted", "in_app": "skipped_no_in_app"}


@dataclass(frozen=True)
class Command:
    """One outbox command: ``fold`` merges it into a pending one of the same kind (newest wins)."""

    kind: str
    payload: dict[str, Any]
    fold: bool = True


@dataclass(frozen=True)
class FixChange:
    """Values to store on the fix ``fix_id``."""

    fix_id: int
    values: dict[str, Any]


@dataclass(frozen=True)
class History:
    """What tells a regression from a stale client, for a closed issue."""

    #: The fix in force (closed by a merged PR), if any.
    fix: FixRow | None = None
    #: The group's versions first seen by the time the issue was closed.
    seen_by_close: tuple[str, ...] = ()
    #: Every version of the group's service (any group), with when it was first seen.
    service_versions: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Stored:
    """What the ledger holds for the group when an occurrence arrives."""

    issue: IssueRow
    create_queued: bool = False
    create_failed: bool = False
    #: Needed when the issue is closed (else ignored).
    history: History = field(default_factory=History)


@dataclass(frozen=True)
class Verdict:
    """Whether an occurrence reopens a closed issue, and what judging it learnt about the fix."""

    reopens: bool
    #: The fix in force after ``settle`` (None: no fix).
    fix: FixRow | None = None
    changes: tuple[FixChange, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What one occurrence changes: the issue map entry, the outbox, the fix in force."""

    issue: dict[str, Any]
    commands: tuple[Command, ...] = ()
    fix_changes: tuple[FixChange, ...] = ()
    #: Why a hand-off was not queued (for the log), when it was refused for good.
    handoff_refusal: str | None = None


def is_milestone(count: int) -> int:
    """The milestone ``count`` has reached: the largest power of ten <= count (>= 10), else 0."""
    if count < 10:
        return 0
    m = 10
    while m * 10 <= count:
        m *= 10
    return m


def settle(fix: FixRow, service_versions: Sequence[tuple[str, float]], closed_version: str) -> FixRow:
    """A merged fix becomes deployed once a version of the service carrying it has been seen."""
    if fix.state != "merged":
        return fix
    found = deployed_version(service_versions, fix.merged_at, closed_version)
    if found is None:
        return fix
    base, version, first_seen = found
    return replace(fix, base_version=base, fix_version=version, deployed_at=first_seen, state="deployed")


def settle_change(before: FixRow, after: FixRow) -> tuple[FixChange, ...]:
    """The stored values ``settle`` changed (none when it changed nothing)."""
    if after == before:
        return ()
    values = {"base_version": after.base_version, "fix_version": after.fix_version,
              "deployed_at": after.deployed_at, "state": after.state}
    return (FixChange(after.id, values),)


def regresses(issue: IssueRow, version: str, history: History) -> Verdict:
    """Whether an occurrence in ``version`` reopens the closed ``issue``: the one rule for every path.

    Muted (closed as not planned): never. With a fix in force the threshold is the version
    carrying it; until that version is seen (merged, not deployed) every versioned occurrence
    comes from a build without the fix. Without a fix it is the version the issue was closed in.
    """
    fix = history.fix
    if issue.muted:
        return Verdict(False, fix)
    if fix is None:
        return Verdict(not_older(version, issue.closed_version, history.seen_by_close))
    settled = settle(fix, history.service_versions, issue.closed_version)
    changes = settle_change(fix, settled)
    if not settled.fix_version:
        return Verdict(not version, settled, changes)  # unversioned: cannot be told apart from a fixed one
    deployed = settled.deployed_at or 0.0
    seen = [v for v, t in history.service_versions if t < deployed]
    return Verdict(not_older(version, settled.fix_version, seen), settled, changes)


def stale(verdict: Verdict) -> tuple[FixChange, ...]:
    """An occurrence after the close in a build without the fix: counted against the fix, never a regression."""
    if verdict.reopens or verdict.fix is None:
        return ()
    return (FixChange(verdict.fix.id, {"stale": verdict.fix.stale + 1}),)


def create_command(
    config: GitHubConfig, fp: str, *, title: str, body: str, source: str, version: str, facts: dict[str, Any],
    data: dict[str, Any],
) -> Command:
    """The ``create`` of a group's issue; ``data`` is its data block (``data_block``), ``facts`` the gate's."""
    # The header is written here, whatever the renderer put where: it is what makes the issue ours.
    body = with_header(fp, {**data, **facts}, body)
    payload = {"title": title[:MAX_TITLE] or UNTITLED, "body": body, "labels": config.all_labels(source),
               "version": version}
    return Command("create", payload, fold=False)


def data_block(body: str, exception_type: str, service: str, source: str) -> dict[str, Any]:
    """The renderer's data block (at its fixed place in ``body``), or the basic facts without one."""
    data = parse_header(body)
    if data is not None:
        return data
    return {"exception_type": exception_type, "service": service, "source": source}


def decide(update: GroupUpdate, stored: Stored, config: GitHubConfig, now: float) -> Decision:
    """What one occurrence (``update``, recorded by the store at ``now``) asks of GitHub."""
    occ, group, row = update.occurrence, update.group, stored.issue
    fp = group.fingerprint
    version = occ.exception.service_version
    source = occ.exception.source or group.source
    in_app = _handoff.has_in_app_frames(occ)
    trusted, basis = _handoff.provenance(occ.exception, config.handoff_untrusted_sources)
    count = max(row.count, group.count)
    milestone = is_milestone(count)
    # One occurrence from an untrusted origin makes the whole group untrusted, for good.
    if row.trusted is not None and trusted:
        trusted, basis = row.trusted, row.provenance or basis
    facts = {"count": count, "in_app": bool(row.has_in_app or in_app), "trusted_source": trusted,
             "provenance": basis}
    issue: dict[str, Any] = {
        "count": count,
        "newest_version": version or row.newest_version,
        "source": row.source or source,  # the first source wrote the issue body
        "has_in_app": int(row.has_in_app or in_app),
        "milestone": max(row.milestone, milestone),
        "trusted": int(trusted),
        "provenance": basis,
    }
    commands: list[Command] = []
    filed, queued = row.issue_number is not None, stored.create_queued
    if not filed and not queued and not stored.create_failed:
        data = data_block(occ.body, occ.exception.type, occ.exception.service_name, source)
        commands.append(create_command(config, fp, title=occ.title, body=occ.body, source=source, version=version,
                                       facts=facts, data=data))
        queued = True
    if not (filed or queued):
        return Decision(issue)
    gate_facts_changed = (
        row.count < config.handoff_min_occurrences <= count
        or milestone > row.milestone
        or (row.trusted is not None and row.trusted != trusted)
        or (in_app and not row.has_in_app)
    )
    # Only an open issue can still be handed over; a closed one keeps the facts it was closed with.
    if gate_facts_changed and not update.is_new and row.state != "closed":
        commands.append(Command("data", facts))
    snapshot = {"version": version, "ts": now, "body": occ.body, "count": count}
    reasons: list[str] = []
    if milestone > row.milestone and not update.is_new:
        reasons.append(milestone_reason(milestone))
    if update.new_version and version and not update.is_new:
        reasons.append(version_reason(version))
    fix_changes: tuple[FixChange, ...] = ()
    if filed and row.state == "closed":
        reasons = []  # a closed issue gets a reopen comment or nothing
        verdict = regresses(row, version, stored.history)
        fix_changes = verdict.changes + stale(verdict)
        if verdict.reopens:
            commands.append(Command("reopen", snapshot))
    elif filed and now - row.state_checked_at >= config.state_check_interval:
        commands.append(Command("check", snapshot))
    if reasons:
        commands.append(Command("comment", {**snapshot, "reasons": reasons}))
    refused_note = None
    if config.handoff == "copilot" and not row.handoff and not row.muted:
        refused = _handoff.refusal(config, source=row.source or source, trusted=trusted, basis=basis,
                                   count=count, in_app=bool(facts["in_app"]))
        if refused is None:
            commands.append(Command("handoff", {}, fold=False))
            issue["handoff"] = "queued"
        elif refused[0] in _SKIPPED:
            issue["handoff"] = _SKIPPED[refused[0]]
            refused_note = refused[1]
    return Decision(issue, tuple(commands), fix_changes, refused_note)


def comment_due(issue: IssueRow, config: GitHubConfig) -> float:
    """When the issue may get its next comment (one per ``comment_interval``)."""
    return issue.last_comment_at + config.comment_interval


def verify_due(fix: FixRow, last_seen: float | None, window: float, now: float) -> float:
    """When a deployed fix has been silent for ``window``: after the deploy and the group's last occurrence."""
    return max(fix.deployed_at or now, last_seen or 0.0) + window
