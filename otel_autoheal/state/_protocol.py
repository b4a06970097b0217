"""What the core needs of a state store: the contract both ``SQLiteStore`` and ``PostgresStore`` keep.

``tests/state/test_store_contract.py`` runs one suite against both; mypy checks both against this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from otel_autoheal.model import GroupRecord, GroupStats, GroupUpdate, Occurrence

__all__ = ["IssueRenderer", "Store"]


class IssueRenderer(Protocol):
    """Renders a group's issue for ``Store.record_many``: once per batch and group, titles chained before."""

    def title(self, occurrence: Occurrence, previous: str) -> str:
        """The group's title after ``occurrence`` when its title was ``previous``."""
        ...

    def issue(self, occurrence: Occurrence, stats: GroupStats) -> tuple[str, str]:
        """``(title, body)`` with ``occurrence`` as the sample and ``stats`` including it."""
        ...


class Store(Protocol):
    """Groups, occurrences and the intake journal. Every method may be called from any thread."""

    #: Why the store can no longer be written (its file was replaced), or None.
    lost: str | None

    @property
    def path(self) -> Path | str: ...

    def transaction(self, wait: float | None = None) -> AbstractContextManager[Any]: ...

    def check_file(self) -> str | None: ...

    def record(self, occurrence: Occurrence, render: Callable[[Any], tuple[str, str]], now: float | None = None,
               journal_trace: tuple[str, int | None] | None = None) -> GroupUpdate: ...

    def record_many(self, occurrences: Sequence[Occurrence], renderer: IssueRenderer, now: float | None = None,
                    journal: Sequence[tuple[str, int | None]] = ()) -> list[GroupUpdate]: ...

    def groups(self) -> list[GroupRecord]: ...

    def group(self, group_id: int) -> GroupRecord | None: ...

    def group_by_fingerprint(self, fingerprint: str) -> GroupRecord | None: ...

    def group_count(self) -> int: ...

    def journal_add(self, entries: list[tuple[str, str, str]], conn: Any = None) -> None: ...

    def journal_entries(self, received_before: float | None = None) -> list[tuple[int, str, str, str]]: ...

    def journal_done(self, trace_id: str, up_to_id: int | None = None, conn: Any = None) -> None: ...

    def journal_high_water(self) -> int: ...

    def journal_rekey(self, pairs: list[tuple[str, int]]) -> None: ...

    def adopt_orphans(self) -> list[tuple[int, str, str, str]]: ...

    def close(self) -> None: ...
