"""Per-group occurrence history: hour and day buckets, the newest occurrences and the newest detail.

Written inside the transaction that counts an occurrence (``SQLiteStore.record`` and
``PostgresStore.record``: the same statements through ``PortableConn``; the tables themselves are
each backend's ``Dialect.history_schema``), so history and counts never disagree, and read by the
web page. Bounded per group whatever the traffic:
``HOURS_KEPT`` hour buckets, ``DAYS_KEPT`` day buckets, ``OCCURRENCES_KEPT`` occurrences and one
detail row; each write prunes its own group through the primary-key index, so it costs a few
index look-ups, never a scan. Everything stored here was scrubbed by the pipeline already.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from otel_autoheal.model import ExceptionRecord, Occurrence
from otel_autoheal.state._dialect import PortableConn

__all__ = [
    "DAYS_KEPT",
    "HOURS_KEPT",
    "OCCURRENCES_KEPT",
    "change_token",
    "day_buckets",
    "detail",
    "hour_buckets",
    "recent_occurrences",
    "record_history",
    "record_history_many",
]

#: Hour buckets kept per group: the 24 h sparkline plus a day for late data and time zones.
HOURS_KEPT = 48
#: Day buckets kept per group (the chart's longest range).
DAYS_KEPT = 90
#: Newest occurrences kept per group (time, version, environment, trace).
OCCURRENCES_KEPT = 50
#: Bounds on the newest occurrence's detail (the body already holds the full text for GitHub).
_MAX_FRAMES = 200
_MAX_STACK_CHARS = 64_000
_MAX_TEXT = 2_000
_MAX_FIELDS = 32
_MAX_FIELD_CHARS = 200
_MAX_RELATED = 20

def _cut(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(values: dict[str, Any]) -> dict[str, str]:
    items = list(values.items())[:_MAX_FIELDS]
    return {_cut(str(k), 80): _cut(v if isinstance(v, str) else json.dumps(v, default=str), _MAX_FIELD_CHARS)
            for k, v in items}


def _detail_of(exc: ExceptionRecord, related: Sequence[ExceptionRecord], occurred: float) -> dict[str, Any]:
    """What the group page shows of the newest occurrence: chain, frames, logs, context."""
    return {
        "time": occurred,
        "trace_id": exc.trace_id,
        "span_id": exc.span_id,
        "span_name": _cut(exc.span_name, 300),
        "version": exc.service_version,
        "environment": exc.environment,
        "stacktrace": _cut(exc.stacktrace, _MAX_STACK_CHARS),
        "chain": [
            {
                "type": _cut(parsed.type, 300),
                "message": _cut(parsed.message),
                "language": parsed.language,
                "frames": [
                    {"function": _cut(f.function, 300), "file": _cut(f.filename, 500), "line": f.lineno,
                     "column": f.colno, "in_app": f.in_app, "instrumentation": f.instrumentation,
                     "source": _cut(f.source_line or "", 300)}
                    for f in parsed.frames[-_MAX_FRAMES:]
                ],
            }
            for parsed in exc.chain
        ],
        "logs": [
            {"time_unix_nano": line.time_unix_nano, "severity": line.severity, "body": _cut(line.body),
             "attributes": _fields(line.attributes)}
            for line in exc.preceding_logs
        ],
        "context": _fields(exc.span_attributes),
        "related": [
            {"type": _cut(r.type, 300), "message": _cut(r.message, 300), "service": r.service_name,
             "span_name": _cut(r.span_name, 300)}
            for r in related[:_MAX_RELATED]
        ],
    }


def record_history(conn: PortableConn, group_id: int, occurrence: Occurrence, occurred: float,
                   now: float) -> None:
    """Count one occurrence in its buckets, remember it and its detail, and prune the group's history."""
    record_history_many(conn, group_id, [(occurrence, occurred)], now)


def record_history_many(conn: PortableConn, group_id: int, entries: Sequence[tuple[Occurrence, float]],
                        now: float) -> None:
    """``record_history`` for ``(occurrence, occurred)`` entries of one group in order, at once.

    Leaves what recording them one by one would leave: the buckets count each entry, the newest
    ``OCCURRENCES_KEPT`` are remembered and the detail is the last entry's.
    """
    if not entries:
        return
    oldest_hour, oldest_day = int(now // 3600) - HOURS_KEPT, int(now // 86400) - DAYS_KEPT
    hours: dict[int, int] = {}
    days: dict[int, int] = {}
    for _, occurred in entries:
        hour, day = int(occurred // 3600), int(occurred // 86400)
        if hour > oldest_hour:  # late data older than the window would only be pruned again
            hours[hour] = hours.get(hour, 0) + 1
        if day > oldest_day:
            days[day] = days.get(day, 0) + 1
    for hour, n in hours.items():
        conn.execute("INSERT INTO group_hours (group_id, hour, count) VALUES (?, ?, ?)"
                     " ON CONFLICT (group_id, hour) DO UPDATE SET count = group_hours.count + excluded.count",
                     (group_id, hour, n))
    for day, n in days.items():
        conn.execute("INSERT INTO group_days (group_id, day, count) VALUES (?, ?, ?)"
                     " ON CONFLICT (group_id, day) DO UPDATE SET count = group_days.count + excluded.count",
                     (group_id, day, n))
    conn.execute("DELETE FROM group_hours WHERE group_id = ? AND hour <= ?", (group_id, oldest_hour))
    conn.execute("DELETE FROM group_days WHERE group_id = ? AND day <= ?", (group_id, oldest_day))
    for occurrence, occurred in entries[-OCCURRENCES_KEPT:]:
        exc = occurrence.exception
        conn.execute(
            "INSERT INTO group_occurrences (group_id, time, processed, version, environment, trace_id, span_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (group_id, occurred, now, exc.service_version, exc.environment, exc.trace_id, exc.span_id),
        )
    conn.execute(
        "DELETE FROM group_occurrences WHERE group_id = ? AND id < (SELECT id FROM group_occurrences"
        " WHERE group_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (group_id, group_id, OCCURRENCES_KEPT - 1),
    )
    last, occurred = entries[-1]
    conn.execute("INSERT INTO group_details (group_id, detail) VALUES (?, ?)"
                 " ON CONFLICT (group_id) DO UPDATE SET detail = excluded.detail",
                 (group_id, json.dumps(_detail_of(last.exception, last.related, occurred))))


def hour_buckets(conn: PortableConn, group_ids: Sequence[int], since_hour: int) -> dict[int, dict[int, int]]:
    """group id → {hour number (seconds since epoch // 3600) → count}, from ``since_hour`` on."""
    out: dict[int, dict[int, int]] = {g: {} for g in group_ids}
    if not group_ids:
        return out
    marks = ",".join("?" * len(group_ids))
    for group_id, hour, count in conn.execute(
        f"SELECT group_id, hour, count FROM group_hours WHERE group_id IN ({marks}) AND hour >= ?",
        (*group_ids, since_hour),
    ):
        out[int(group_id)][int(hour)] = int(count)
    return out


def day_buckets(conn: PortableConn, group_ids: Sequence[int], since_day: int) -> dict[int, dict[int, int]]:
    """group id → {day number (seconds since epoch // 86400, UTC) → count}, from ``since_day`` on."""
    out: dict[int, dict[int, int]] = {g: {} for g in group_ids}
    if not group_ids:
        return out
    marks = ",".join("?" * len(group_ids))
    for group_id, day, count in conn.execute(
        f"SELECT group_id, day, count FROM group_days WHERE group_id IN ({marks}) AND day >= ?",
        (*group_ids, since_day),
    ):
        out[int(group_id)][int(day)] = int(count)
    return out


def recent_occurrences(conn: PortableConn, group_id: int, limit: int = OCCURRENCES_KEPT) -> list[dict[str, Any]]:
    """The group's last recorded occurrences (``OCCURRENCES_KEPT``), by their own time, newest first."""
    rows = conn.execute(
        "SELECT id, time, processed, version, environment, trace_id, span_id FROM group_occurrences"
        " WHERE group_id = ? ORDER BY time DESC, id DESC LIMIT ?", (group_id, limit)).fetchall()
    return [{"id": int(r[0]), "time": float(r[1]), "processed": float(r[2]), "version": str(r[3]),
             "environment": str(r[4]), "trace_id": str(r[5]), "span_id": str(r[6])} for r in rows]


def detail(conn: PortableConn, group_id: int) -> dict[str, Any] | None:
    """The newest occurrence's detail (``_detail_of``), or None for a group recorded before history existed."""
    row = conn.execute("SELECT detail FROM group_details WHERE group_id = ?", (group_id,)).fetchone()
    return json.loads(row[0]) if row else None


def change_token(conn: PortableConn, now: float) -> str:
    """Changes whenever an occurrence is recorded (never on a repeated delivery): the page's "anything new?".

    One indexed look-up (``Dialect.change_token``); ``now`` bounds which groups PostgreSQL looks
    at: those recorded since the start of the previous hour (moving once an hour, it then changes
    once for nothing).
    """
    sql = conn.dialect.change_token
    since = (int(now // 3600) - 1) * 3600.0
    row = conn.execute(sql, (since,) if "?" in sql else ()).fetchone()
    return ".".join(str(int(v)) for v in row) if row else "0"
