"""The occurrence history in the state store (bounded buckets) and the way to a fix read from the sink's tables."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from otel_autoheal.model import ExceptionRecord, Frame, Occurrence, ParsedException
from otel_autoheal.state._history import DAYS_KEPT, HOURS_KEPT, OCCURRENCES_KEPT
from otel_autoheal.state.postgres import PostgresStore
from otel_autoheal.state.sqlite import GroupStats, SQLiteStore
from otel_autoheal.ui import _facts


def _occurrence(fingerprint: str, when: float, version: str = "1.0") -> Occurrence:
    exc = ExceptionRecord(
        type="ValueError", message="bad order", stacktrace="ValueError: bad order", time_unix_nano=int(when * 1e9),
        trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], origin="span_event",
        resource={"service.name": "shop", "service.version": version, "deployment.environment.name": "prod"},
        chain=[ParsedException("ValueError", "bad order", (Frame("app/orders.py", "place", 3),), "python")])
    return Occurrence(fingerprint, ["service.name=shop"], "", "", exc)


def _render(stats: GroupStats) -> tuple[str, str]:
    return f"ValueError ({stats.count})", "body"


def test_history_is_bucketed_and_bounded(open_store: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """On SQLite and PostgreSQL: buckets by the error's own time, pruned history, per-page reads, any-case search."""
    store = open_store()
    now = time.time()
    # 200 occurrences spread over 150 days (older ones are recorded as late data: their own times).
    for index in range(200):
        store.record(_occurrence("fp-a", now - index * 86400 * 0.75, version=f"1.{index // 50}"), _render, now=now)
    for _ in range(3):
        store.record(_occurrence("fp-b", now - 7200), _render, now=now)
    # Ids are the store's (PostgreSQL's sequence skips numbers), so groups are found by fingerprint.
    a_id, b_id = (getattr(store.group_by_fingerprint(fp), "id", 0) for fp in ("fp-a", "fp-b"))
    with store.read() as conn:
        hours = conn.execute(f"SELECT COUNT(*) FROM group_hours WHERE group_id = {a_id}").fetchone()[0]
        days = conn.execute(f"SELECT COUNT(*), MIN(day) FROM group_days WHERE group_id = {a_id}").fetchone()
        kept = conn.execute(f"SELECT COUNT(*) FROM group_occurrences WHERE group_id = {a_id}").fetchone()[0]
    assert hours <= HOURS_KEPT
    assert 0 < days[0] <= DAYS_KEPT and days[1] > int(now // 86400) - DAYS_KEPT
    assert kept == OCCURRENCES_KEPT

    page = _facts.list_groups(store, _facts.ListQuery(spark="24h"), now=now)
    by_id = {g["id"]: g for g in page.groups}
    assert by_id[b_id]["spark"][-3] == 3 and sum(by_id[b_id]["spark"]) == 3, "three occurrences two hours ago"
    assert by_id[a_id]["spark"][-1] == 1
    fourteen = _facts.list_groups(store, _facts.ListQuery(spark="14d"), now=now)
    today = int(now // 86400)

    def in_last(days: int) -> int:
        return len([i for i in range(200) if int((now - i * 86400 * 0.75) // 86400) > today - days])

    a = next(g for g in fourteen.groups if g["id"] == a_id)
    assert sum(a["spark"]) == in_last(14)

    facts = _facts.group_facts(store, a_id, "90d", now=now)
    assert facts is not None
    # The last 50 recorded were the oldest errors (indices 150-199, version 1.3), newest of them first.
    assert facts.occurrences[0]["version"] == "1.3" and len(facts.occurrences) == OCCURRENCES_KEPT
    assert facts.occurrences[0]["time"] > facts.occurrences[-1]["time"]
    assert [v for v, _ in facts.versions] == ["1.0", "1.1", "1.2", "1.3"]
    assert facts.detail is not None and facts.detail["chain"][0]["frames"][0]["function"] == "place"
    assert sum(n for _, n in facts.chart) == in_last(90)
    assert facts.way.state == "local" and facts.timeline == []

    found = _facts.list_groups(store, _facts.ListQuery(q="valueerror"), now=now)
    assert found.total == 2, "the search ignores case on both backends"
    assert _facts.list_groups(store, _facts.ListQuery(q=f"#{b_id}"), now=now).groups[0]["fingerprint"] == "fp-b"
    assert _facts.list_groups(store, _facts.ListQuery(q="50%_off"), now=now).total == 0
    occurrences = _facts.occurrence_facts(store, b_id, now=now)
    assert occurrences is not None and sum(h["count"] for h in occurrences["hours"]) == 3
    assert _facts.occurrence_facts(store, 99_999, now=now) is None


def test_way_to_a_fix_from_the_github_sink_tables(open_store: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """Filed, handed to Copilot, PR open, fix merged, verified, regressed and muted are read from the sink's ledger."""
    from otel_autoheal.sinks.github.ledger import ledger_for

    store = open_store()
    now = time.time()
    names = ("local", "filed", "copilot", "pr", "merged", "verified", "regressed", "muted")
    for name in names:
        store.record(_occurrence(name, now), _render, now=now)
    ledger = ledger_for(store)
    with ledger.unit() as unit:
        for number, name in enumerate(names[1:], start=11):
            unit.set_issue(name, issue_number=number)
        unit.set_issue("copilot", handoff="assigned")
        unit.set_issue("pr", handoff="skipped_open_pr")
        unit.set_issue("merged", state="closed", state_reason="completed", closed_at=now)
        unit.add_fix("merged", now, 7, "abc", now, "merged")
        unit.set_issue("verified", state="closed", state_reason="completed", closed_at=now)
        unit.add_fix("verified", now, 8, "def", now, "verified")
        unit.add_fix("regressed", now - 10, 9, "0a1", now - 10, "regressed")
        unit.set_issue("muted", state="closed", state_reason="not_planned", closed_at=now)
    assert ledger.issue_count() == 7
    expected = {"local": "local", "filed": "filed", "copilot": "copilot", "pr": "pr_open", "merged": "fix_merged",
                "verified": "verified", "regressed": "regressed", "muted": "muted"}
    page = _facts.list_groups(store, _facts.ListQuery(), now=now)
    assert {g["fingerprint"]: g["way"].state for g in page.groups} == expected
    merged = next(g for g in page.groups if g["fingerprint"] == "merged")["way"]
    assert merged.as_json("https://github.com/acme/shop")["pr_url"] == "https://github.com/acme/shop/pull/7"
    for fingerprint, state in expected.items():
        filtered = _facts.list_groups(store, _facts.ListQuery(state=state), now=now)
        assert [g["fingerprint"] for g in filtered.groups] == [fingerprint], state
        assert filtered.total == 1
    merged_id = next(g for g in page.groups if g["fingerprint"] == "merged")["id"]
    facts = _facts.group_facts(store, merged_id, now=now)
    assert facts is not None and any("fix merged: PR #7" in e["what"] for e in facts.timeline)


def test_live_token_follows_recorded_occurrences(open_store: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """The page's live token moves when another store (another instance) records an occurrence, and only then."""
    reader, writer = open_store(), open_store()
    now = time.time()
    writer.record(_occurrence("fp-live", now), _render, now=now)
    token = _facts.live_token(reader, now=now)
    assert _facts.live_token(reader, now=now) == token
    writer.record(_occurrence("fp-live", now), _render, now=now)
    assert _facts.live_token(reader, now=now) != token
    token = _facts.live_token(reader, now=now)
    writer.record(_occurrence("fp-other", now), _render, now=now)
    assert _facts.live_token(reader, now=now) != token


def test_without_the_sink_tables_every_group_is_local_only(
        open_store: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """A state without the GitHub sink's tables (PostgreSQL today) lists every group as "local only", filters work."""
    store = open_store()
    now = time.time()
    for name in ("one", "two"):
        store.record(_occurrence(name, now), _render, now=now)
    page = _facts.list_groups(store, _facts.ListQuery(), now=now)
    assert {g["way"].state for g in page.groups} == {"local"} and page.total == 2
    assert _facts.list_groups(store, _facts.ListQuery(state="local"), now=now).total == 2
    assert _facts.list_groups(store, _facts.ListQuery(state="filed"), now=now).total == 0
    one = store.group_by_fingerprint("one")
    assert one is not None
    facts = _facts.group_facts(store, one.id, now=now)
    assert facts is not None and facts.way.state == "local" and facts.timeline == []
