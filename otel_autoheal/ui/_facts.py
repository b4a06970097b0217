"""What the page shows, read from the state store: plain data for the templates and the JSON API.

Read-only: every function takes one read-only snapshot (``store.read()``; on PostgreSQL a
``REPEATABLE READ, READ ONLY`` transaction) and never the write lock, so the page never holds up
ingest. The SQL is the same on SQLite and PostgreSQL (``PortableConn``; what differs is the
store's ``Dialect``). The list is paged in SQL (``LIMIT``/``OFFSET``
over indexed sort columns); only the rows of one page get their versions, buckets and way to a fix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from otel_autoheal.state._dialect import Dialect, PortableConn
from otel_autoheal.state._history import change_token, day_buckets, detail, hour_buckets, recent_occurrences
from otel_autoheal.ui import _fixway

__all__ = [
    "CHARTS",
    "SORTS",
    "SPARKS",
    "GroupFacts",
    "ListPage",
    "ListQuery",
    "PageStore",
    "group_facts",
    "list_groups",
    "live_token",
    "occurrence_facts",
]

#: Sort keys of the list and their SQL order (ties by newest id, so paging is stable).
SORTS: dict[str, str] = {
    "last_seen": "last_seen DESC, id DESC",
    "count": "count DESC, id DESC",
    "first_seen": "first_seen DESC, id DESC",
}
#: Sparkline ranges: name → (bucket seconds, buckets).
SPARKS: dict[str, tuple[int, int]] = {"24h": (3600, 24), "14d": (86400, 14)}
#: Chart ranges on the group page.
CHARTS: dict[str, tuple[int, int]] = {"48h": (3600, 48), "14d": (86400, 14), "90d": (86400, 90)}
MAX_PER_PAGE = 200
_LIST_COLS = "id, fingerprint, title, count, first_seen, last_seen, service, exception_type, source"


class PageStore(Protocol):
    """What the page needs of a state store (``SQLiteStore`` and ``PostgresStore`` both are one)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def path(self) -> Any: ...

    def read(self) -> AbstractContextManager[Any]: ...

    def group_count(self) -> int: ...


@contextmanager
def _snapshot(store: PageStore) -> Iterator[PortableConn]:
    """One read-only snapshot of ``store`` for the block, speaking the shared SQL."""
    with store.read() as conn:
        db = PortableConn(conn, store.dialect)
        if store.dialect.snapshot:
            db.execute(store.dialect.snapshot)
        yield db


@dataclass(frozen=True)
class ListQuery:
    """The list's filters, sort, page and sparkline range, as given in the URL."""

    service: str = ""
    source: str = ""
    state: str = ""
    q: str = ""
    sort: str = "last_seen"
    page: int = 1
    per_page: int = 50
    spark: str = "24h"

    @classmethod
    def from_params(cls, params: Any) -> ListQuery:
        """From query parameters; anything unknown or out of range falls back to the default."""
        def number(name: str, default: int, high: int) -> int:
            try:
                return min(max(int(params.get(name, default)), 1), high)
            except (TypeError, ValueError):
                return default

        query = cls(service=str(params.get("service", ""))[:200], source=str(params.get("source", ""))[:100],
                    state=str(params.get("state", "")), q=str(params.get("q", "")).strip()[:200],
                    sort=str(params.get("sort", "last_seen")), page=number("page", 1, 1_000_000),
                    per_page=number("per_page", 50, MAX_PER_PAGE), spark=str(params.get("spark", "24h")))
        if query.sort not in SORTS:
            query = replace(query, sort="last_seen")
        if query.state and query.state not in _fixway.STATES:
            query = replace(query, state="")
        if query.spark not in SPARKS:
            query = replace(query, spark="24h")
        return query

    def params(self, **changes: Any) -> dict[str, str]:
        """The non-default parameters of this query with ``changes`` applied (for links)."""
        query = replace(self, **changes)
        defaults = ListQuery()
        return {k: str(getattr(query, k)) for k in ("q", "service", "source", "state", "sort", "spark", "page",
                                                     "per_page") if getattr(query, k) != getattr(defaults, k)}


@dataclass
class ListPage:
    query: ListQuery
    total: int
    groups: list[dict[str, Any]]
    services: list[tuple[str, int]]
    sources: list[tuple[str, int]]
    token: str
    github_web: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def _where(query: ListQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if query.service:
        clauses.append("service = ?")
        args.append(query.service)
    if query.source:
        clauses.append("source = ?")
        args.append(query.source)
    if query.q:
        pattern = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        like = dialect.ilike
        clauses.append(f"(title {like} ? ESCAPE '\\' OR exception_type {like} ? ESCAPE '\\'"
                       f" OR service {like} ? ESCAPE '\\' OR fingerprint = ? OR CAST(id AS TEXT) = ?)")
        args += [pattern, pattern, pattern, query.q, query.q.lstrip("#")]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _buckets(conn: PortableConn, ids: list[int], size: int, count: int, now: float) -> dict[int, list[int]]:
    """group id → ``count`` bucket counts ending with the current bucket."""
    last = int(now // size)
    first = last - count + 1
    read = hour_buckets if size == 3600 else day_buckets
    found = read(conn, ids, first)
    return {g: [found[g].get(b, 0) for b in range(first, last + 1)] for g in ids}


def _versions(conn: PortableConn, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {g: [] for g in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for group_id, version in conn.execute(
            f"SELECT group_id, version FROM group_versions WHERE group_id IN ({marks}) ORDER BY first_seen, version",
            ids,
        ):
            out[int(group_id)].append(str(version))
    return out


def _row(row: Any) -> dict[str, Any]:
    return {"id": int(row[0]), "fingerprint": str(row[1]), "title": str(row[2]), "count": int(row[3]),
            "first_seen": float(row[4]), "last_seen": float(row[5]), "service": str(row[6]),
            "exception_type": str(row[7]), "source": str(row[8])}


def list_groups(store: PageStore, query: ListQuery, github_web: str = "", now: float | None = None) -> ListPage:
    """One page of groups with their sparklines, versions and way to a fix."""
    now = time.time() if now is None else now
    where, args = _where(query, store.dialect)
    order = SORTS[query.sort]
    offset = (query.page - 1) * query.per_page
    with _snapshot(store) as conn:
        if query.state:
            # The way to a fix lives in the sink's tables: filter the matching ids in Python.
            candidates = conn.execute(f"SELECT id, fingerprint FROM groups{where} ORDER BY {order}", args).fetchall()
            keep = _fixway.ways_in_state(conn, [str(r[1]) for r in candidates], query.state)
            matching = [int(r[0]) for r in candidates if str(r[1]) in keep]
            total = len(matching)
            page_ids = matching[offset: offset + query.per_page]
            rows = []
            if page_ids:
                marks = ",".join("?" * len(page_ids))
                rows = conn.execute(f"SELECT {_LIST_COLS} FROM groups WHERE id IN ({marks}) ORDER BY {order}",
                                    page_ids).fetchall()
        else:
            total = int(conn.execute(f"SELECT COUNT(*) FROM groups{where}", args).fetchone()[0])
            rows = conn.execute(f"SELECT {_LIST_COLS} FROM groups{where} ORDER BY {order} LIMIT ? OFFSET ?",
                                [*args, query.per_page, offset]).fetchall()
        groups = [_row(r) for r in rows]
        ids = [g["id"] for g in groups]
        size, count = SPARKS[query.spark]
        sparks = _buckets(conn, ids, size, count, now)
        versions = _versions(conn, ids)
        ways = _fixway.ways(conn, [g["fingerprint"] for g in groups])
        services = [(str(r[0]), int(r[1])) for r in conn.execute(
            "SELECT service, COUNT(*) FROM groups GROUP BY service ORDER BY service LIMIT 500")]
        sources = [(str(r[0]), int(r[1])) for r in conn.execute(
            "SELECT source, COUNT(*) FROM groups GROUP BY source ORDER BY source LIMIT 100")]
        token = _token(conn, now)
    for group in groups:
        group["spark"] = sparks[group["id"]]
        group["versions"] = versions[group["id"]]
        group["way"] = ways[group["fingerprint"]]
    return ListPage(query, total, groups, services, sources, token, github_web)


@dataclass
class GroupFacts:
    group: dict[str, Any]
    body: str
    grouping_fields: list[str]
    versions: list[tuple[str, float]]
    trace_ids: list[str]
    occurrences: list[dict[str, Any]]
    chart_range: str
    chart: list[tuple[float, int]]
    detail: dict[str, Any] | None
    way: _fixway.Way
    timeline: list[dict[str, Any]]
    token: str


def group_facts(store: PageStore, group_id: int, chart_range: str = "14d",
                now: float | None = None) -> GroupFacts | None:
    """Everything the group page shows, from one snapshot; None when there is no such group."""
    now = time.time() if now is None else now
    if chart_range not in CHARTS:
        chart_range = "14d"
    with _snapshot(store) as conn:
        row = conn.execute(f"SELECT {_LIST_COLS}, body, grouping_fields, first_processed, last_processed"
                           " FROM groups WHERE id = ?", (group_id,)).fetchone()
        if row is None:
            return None
        group = _row(row)
        group.update(first_processed=float(row[11]), last_processed=float(row[12]))
        versions = [(str(r[0]), float(r[1])) for r in conn.execute(
            "SELECT version, first_seen FROM group_versions WHERE group_id = ? ORDER BY first_seen, version",
            (group_id,))]
        trace_ids = [str(r[0]) for r in conn.execute(
            "SELECT trace_id FROM group_traces WHERE group_id = ? ORDER BY seen DESC", (group_id,))]
        size, count = CHARTS[chart_range]
        counts = _buckets(conn, [group_id], size, count, now)[group_id]
        first = (int(now // size) - count + 1) * size
        chart = [(float(first + i * size), n) for i, n in enumerate(counts)]
        github = _fixway.has_github_tables(conn)
        way = _fixway.way_of(conn, group["fingerprint"], github)
        facts = GroupFacts(
            group=group, body=str(row[9]), grouping_fields=_grouping_fields(row[10]), versions=versions,
            trace_ids=trace_ids, occurrences=recent_occurrences(conn, group_id), chart_range=chart_range,
            chart=chart, detail=detail(conn, group_id), way=way,
            timeline=_fixway.timeline(conn, group["fingerprint"]) if github else [],
            token=_token(conn, now))
    return facts


def _grouping_fields(raw: Any) -> list[str]:
    try:
        fields = json.loads(raw)
    except (TypeError, ValueError):
        return []
    return [str(f) for f in fields] if isinstance(fields, list) else []


def occurrence_facts(store: PageStore, group_id: int, now: float | None = None) -> dict[str, Any] | None:
    """``/api/groups/{id}/occurrences``: the newest occurrences and the hour and day buckets."""
    now = time.time() if now is None else now
    with _snapshot(store) as conn:
        if conn.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)).fetchone() is None:
            return None
        hours = _buckets(conn, [group_id], 3600, 48, now)[group_id]
        days = _buckets(conn, [group_id], 86400, 90, now)[group_id]
        recent = recent_occurrences(conn, group_id)
    first_hour, first_day = (int(now // 3600) - 47) * 3600, (int(now // 86400) - 89) * 86400
    return {
        "recent": recent,
        "hours": [{"start": first_hour + i * 3600, "count": n} for i, n in enumerate(hours)],
        "days": [{"start": first_day + i * 86400, "count": n} for i, n in enumerate(days)],
    }


def _token(conn: PortableConn, now: float) -> str:
    return f"{change_token(conn, now)}-{_fixway.change_mark(conn):.3f}"


def live_token(store: PageStore, now: float | None = None) -> str:
    """Changes whenever an occurrence is recorded or the GitHub sink moves (the page polls it to refresh)."""
    with _snapshot(store) as conn:
        return _token(conn, time.time() if now is None else now)
