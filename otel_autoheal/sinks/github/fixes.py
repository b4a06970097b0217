"""Closing the loop: the merged PR that closed an issue, the version carrying it, and the verdicts.

An issue closed as completed is looked up once in its timeline: the ``closed`` event's
``commit_id`` is matched against the ``merge_commit_sha`` of the pull requests that
cross-reference the issue (each read with ``GET /pulls/{n}``); without a match the newest PR
merged before the close wins, else the closing commit itself. The fix is *deployed* once a
``service.version`` of the same service (any group) is first seen after the merge that is newer
than the version in force before it (``versions`` order). From then on an occurrence in a version
at or after the fix reopens the issue; older versions (stale clients) are only counted; and a
group silent for ``verify_window`` gets one closing comment with the numbers (``messages``).

Times from GitHub are whole seconds and the service's ``first_seen`` times are its own clock:
``CLOSED_AT_SLACK`` absorbs the rounding, not clock skew between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from otel_autoheal.sinks.github.records import CLOSED_AT_SLACK
from otel_autoheal.sinks.github.versions import newest_version, not_older

__all__ = ["MAX_PR_CANDIDATES", "MergedFix", "deployed_version", "find_merged_fix", "parse_time"]

#: Pull requests read per close at most (each one ``GET /pulls/{n}``).
MAX_PR_CANDIDATES = 5


@dataclass(frozen=True)
class MergedFix:
    """What closed the issue: a merged PR (``pr_number``) or, without one, the closing commit."""

    pr_number: int | None
    merged_at: float
    commit_sha: str


def parse_time(text: Any) -> float | None:
    """A GitHub timestamp (ISO 8601) as epoch seconds; None when missing or malformed."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _same_repo(issue: dict[str, Any], repository: str) -> bool:
    return str(issue.get("repository_url") or "").lower().endswith(f"/repos/{repository.lower()}")


def find_merged_fix(
    events: Sequence[dict[str, Any]],
    closed_at: float,
    repository: str,
    get_pull: Callable[[int], dict[str, Any]],
) -> MergedFix | None:
    """The merged PR (or commit) behind the close at ``closed_at``, from the issue's timeline events."""
    closes = [e for e in events if e.get("event") == "closed"]
    closing = min(closes, key=lambda e: abs((parse_time(e.get("created_at")) or 0) - closed_at)) if closes else {}
    commit = str(closing.get("commit_id") or "")
    candidates: list[int] = []
    for ev in reversed(events):  # newest reference first
        src = (ev.get("source") or {}).get("issue") or {}
        if ev.get("event") != "cross-referenced" or not src.get("pull_request") or not _same_repo(src, repository):
            continue
        if src.get("state") == "closed" and int(src["number"]) not in candidates:
            candidates.append(int(src["number"]))
    merged: list[MergedFix] = []
    for number in candidates[:MAX_PR_CANDIDATES]:
        pr = get_pull(number)
        merged_at = parse_time(pr.get("merged_at"))
        if merged_at is None:
            continue
        sha = str(pr.get("merge_commit_sha") or "")
        if commit and sha == commit:
            return MergedFix(number, merged_at, sha)
        if merged_at <= closed_at + CLOSED_AT_SLACK:
            merged.append(MergedFix(number, merged_at, sha))
    if merged:
        return max(merged, key=lambda m: m.merged_at)
    if commit:
        return MergedFix(None, parse_time(closing.get("created_at")) or closed_at, commit)
    return None


def deployed_version(
    service_versions: Iterable[tuple[str, float]], merged_at: float, closed_version: str = ""
) -> tuple[str, str, float] | None:
    """``(base, fix, first_seen)``: the first version of the service seen after the merge that is
    newer than ``base`` (the newest one before it, or the issue's closing version), or None."""
    versions = sorted(service_versions, key=lambda vt: vt[1])
    before = [(v, t) for v, t in versions if t <= merged_at]
    if closed_version:
        before.append((closed_version, merged_at))
    base = newest_version(before)
    names = {v for v, _ in before}
    for v, t in versions:
        if t > merged_at - CLOSED_AT_SLACK and v != base and not_older(v, base, names):
            return base, v, t
    return None
