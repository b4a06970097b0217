"""What both stores' ``record_many`` keep in memory while one batch of occurrences is counted.

A batch is counted in one transaction; each group it touches is rendered once, after its last
occurrence in the batch, with the numbers as they stand then. The title still follows every
occurrence (``IssueRenderer.title`` for all but the last), so what is stored is what recording the
occurrences one by one would have stored. Each occurrence still gets its own ``GroupUpdate``, with
the group's count, times and versions as they were right after it (sinks count milestones and new
versions per occurrence) and the title and body rendered for the batch.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from otel_autoheal.model import GroupRecord, GroupStats, GroupUpdate, Occurrence
from otel_autoheal.state._protocol import IssueRenderer

__all__ = ["BatchTally", "GroupTally", "SingleRenderer", "stamps"]


def stamps(count: int, now: float | None) -> list[float]:
    """When each of a batch's occurrences is processed: ``now`` for all if given, else the clock,
    strictly increasing (a group keeps its trace ids by it, newest first: ties would pick any)."""
    if now is not None:
        return [now] * count
    out: list[float] = []
    for _ in range(count):
        stamp = time.time()
        out.append(stamp if not out or stamp > out[-1] else out[-1] + 1e-6)
    return out


class SingleRenderer:
    """``record``'s one-occurrence render callback as an ``IssueRenderer`` (its title is never chained)."""

    def __init__(self, render: Callable[[GroupStats], tuple[str, str]]) -> None:
        self._render = render

    def title(self, occurrence: Occurrence, previous: str) -> str:
        """Never needed: a batch of one renders its only occurrence whole."""
        raise AssertionError("record() counts one occurrence")

    def issue(self, occurrence: Occurrence, stats: GroupStats) -> tuple[str, str]:
        return self._render(stats)


@dataclass
class GroupTally:
    """One group's numbers while a batch is counted."""

    group_id: int
    #: Created by this batch.
    is_new: bool
    count: int
    first_seen: float
    last_seen: float
    #: ``(first_seen, version)`` in the order the stores list versions.
    versions: list[tuple[float, str]]
    #: The title before ``last`` (the stored one, then chained through the batch's occurrences).
    title: str
    last: Occurrence | None = None
    #: When the last occurrence was processed.
    processed: float = 0.0
    #: The first non-empty ``autoheal.source`` of the batch (kept if the group has none yet).
    source: str = ""
    #: ``(occurrence, occurred)`` of the batch, for the history tables.
    history: list[tuple[Occurrence, float]] = field(default_factory=list)
    #: The batch added trace ids to the group (the newest are kept).
    traced: bool = False

    def has_version(self, version: str) -> bool:
        return any(v == version for _, v in self.versions)

    def stats(self) -> GroupStats:
        return GroupStats(self.count, self.first_seen, self.last_seen, tuple(v for _, v in self.versions), self.title)


@dataclass
class _Counted:
    occurrence: Occurrence
    group_id: int
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    versions: tuple[str, ...] = ()
    is_new: bool = False
    new_version: bool = False
    duplicate: bool = False


class BatchTally:
    """The tallies of one batch and the per-occurrence results, in the batch's order."""

    def __init__(self, renderer: IssueRenderer) -> None:
        self.renderer = renderer
        #: By fingerprint.
        self.groups: dict[str, GroupTally] = {}
        #: Occurrence keys counted by this batch (a repeat within the batch is a duplicate too).
        self.keys: set[str] = set()
        self._results: list[_Counted] = []

    def duplicate(self, occurrence: Occurrence, group_id: int) -> None:
        self._results.append(_Counted(occurrence, group_id, duplicate=True))

    def count(self, tally: GroupTally, occurrence: Occurrence, occurred: float, processed: float,
              new_version: bool) -> None:
        """Count ``occurrence`` in ``tally`` (its version, if new, already added with ``add_version``)."""
        if tally.last is not None:
            tally.title = self.renderer.title(tally.last, tally.title)
        first = tally.last is None
        tally.last = occurrence
        tally.count += 1
        # Occurrences may arrive out of order (retries, spooled CLI runs): keep the extremes.
        tally.first_seen, tally.last_seen = min(tally.first_seen, occurred), max(tally.last_seen, occurred)
        tally.processed = processed
        exc = occurrence.exception
        tally.source = tally.source or exc.source
        tally.traced = tally.traced or bool(exc.trace_id)
        tally.history.append((occurrence, occurred))
        self.keys.add(occurrence.key)
        self._results.append(_Counted(
            occurrence, tally.group_id, tally.count, tally.first_seen, tally.last_seen,
            tuple(v for _, v in tally.versions), is_new=tally.is_new and first,
            new_version=new_version and not (tally.is_new and first),
        ))

    @staticmethod
    def add_version(tally: GroupTally, version: str, first_seen: float) -> None:
        bisect.insort(tally.versions, (first_seen, version))

    def render(self, tally: GroupTally) -> tuple[str, str]:
        """The group's issue after the batch: its last occurrence as the sample."""
        assert tally.last is not None
        return self.renderer.issue(tally.last, tally.stats())

    def updates(self, groups: dict[int, GroupRecord]) -> list[GroupUpdate]:
        """One update per occurrence; ``groups`` are the groups as stored after the batch, by id."""
        out = []
        for r in self._results:
            group = groups[r.group_id]
            if not r.duplicate:
                group = replace(group, count=r.count, first_seen=r.first_seen, last_seen=r.last_seen,
                                versions=r.versions)
            out.append(GroupUpdate(group=group, occurrence=r.occurrence, is_new=r.is_new, new_version=r.new_version,
                                   duplicate=r.duplicate))
        return out

    def crossed(self, every: int) -> bool:
        """True when some group's count reached a multiple of ``every`` in this batch."""
        return any(r.count % every == 0 for r in self._results if not r.duplicate)

    def group_ids(self) -> set[int]:
        return {r.group_id for r in self._results}
