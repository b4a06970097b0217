"""BASELINE ONLY (bench/pg_record.py): verbatim copy of ``PostgresStore._record`` at commit 7aee4f9, before pipelining.

One statement per round trip: the way ``record`` ran before ``state/postgres.py`` batched its
statements, kept so that the benchmark measures both in one run against one server.
"""

from __future__ import annotations

import json
import time

from otel_autoheal.model import GroupStats, GroupUpdate, Occurrence
from otel_autoheal.state._dialect import POSTGRES, PortableConn
from otel_autoheal.state._history import record_history
from otel_autoheal.state.postgres import PostgresStore, _AlreadyCounted, _load, _versions
from otel_autoheal.state.sqlite import MAX_TRACE_IDS_PER_GROUP, OCCURRENCE_KEY_SECONDS, Renderer, occurrence_time

__all__ = ["legacy_record"]


def legacy_record(self: PostgresStore, occurrence: Occurrence, render: Renderer, now: float | None = None,
            journal_trace: tuple[str, int | None] | None = None) -> GroupUpdate:
    now = time.time() if now is None else now
    exc = occurrence.exception
    occurred = occurrence_time(exc.time_unix_nano, now)
    version = exc.service_version
    with self.transaction() as conn:
        known = conn.execute(
            "SELECT group_id FROM occurrence_keys WHERE key = %s", (occurrence.key,)
        ).fetchone()
        if known is not None:
            group = _load(conn, "id = %s", (int(known[0]),))
            if journal_trace is not None:
                self.journal_done(journal_trace[0], journal_trace[1], conn)
            if group is not None:
                return GroupUpdate(group=group, occurrence=occurrence, is_new=False, new_version=False,
                                   duplicate=True)
        inserted = conn.execute(
            "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, first_processed,"
            " last_processed, service, exception_type, source, grouping_fields)"
            " VALUES (%s, '', '', 1, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
            (occurrence.fingerprint, occurred, occurred, now, now, exc.service_name, exc.type, exc.source,
             json.dumps(occurrence.grouping_fields)),
        ).fetchone()
        is_new = inserted is not None
        if is_new:
            group_id, count, first_seen, last_seen, previous_title = int(inserted[0]), 1, occurred, occurred, ""
        else:
            # The row lock serialises instances recording this group until we commit.
            row = conn.execute(
                "SELECT id, count, first_seen, last_seen, title FROM groups WHERE fingerprint = %s FOR UPDATE",
                (occurrence.fingerprint,),
            ).fetchone()
            group_id, count, previous_title = int(row[0]), int(row[1]) + 1, str(row[4])
            first_seen, last_seen = min(float(row[2]), occurred), max(float(row[3]), occurred)
        # Another instance recording this very occurrence at this moment: the key's unique
        # index makes one of the two wait and then find it, so it is counted once.
        claimed = conn.execute(
            "INSERT INTO occurrence_keys (key, group_id, seen) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (occurrence.key, group_id, now),
        ).rowcount == 1
        if not claimed:
            raise _AlreadyCounted
        if count % 256 == 0:
            conn.execute("DELETE FROM occurrence_keys WHERE seen < %s", (now - OCCURRENCE_KEY_SECONDS,))
        new_version = False
        if version:
            cur = conn.execute(
                "INSERT INTO group_versions (group_id, version, first_seen) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (group_id, version, now),
            )
            new_version = cur.rowcount == 1
        if exc.trace_id:
            conn.execute(
                "INSERT INTO group_traces (group_id, trace_id, seen) VALUES (%s, %s, %s)"
                " ON CONFLICT (group_id, trace_id) DO UPDATE SET seen = EXCLUDED.seen",
                (group_id, exc.trace_id, now),
            )
            conn.execute(
                "DELETE FROM group_traces WHERE group_id = %s AND trace_id NOT IN"
                " (SELECT trace_id FROM group_traces WHERE group_id = %s ORDER BY seen DESC LIMIT %s)",
                (group_id, group_id, MAX_TRACE_IDS_PER_GROUP),
            )
        # Under the group's row lock: instances write one group's history one after the other.
        record_history(PortableConn(conn, POSTGRES), group_id, occurrence, occurred, now)
        versions = _versions(conn, group_id)
        title, body = render(GroupStats(count, first_seen, last_seen, versions, previous_title))
        conn.execute(
            "UPDATE groups SET title = %s, body = %s, count = %s, first_seen = %s, last_seen = %s,"
            " last_processed = %s, source = CASE WHEN source = '' THEN %s ELSE source END WHERE id = %s",
            (title, body, count, first_seen, last_seen, now, exc.source, group_id),
        )
        group = _load(conn, "id = %s", (group_id,))
        if journal_trace is not None:
            self.journal_done(journal_trace[0], journal_trace[1], conn)
    assert group is not None
    return GroupUpdate(group=group, occurrence=occurrence, is_new=is_new, new_version=new_version and not is_new)
