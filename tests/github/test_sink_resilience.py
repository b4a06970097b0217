"""Outages, timeouts, rate limits and write pacing, observed from the stand-in's request log."""

from __future__ import annotations

import itertools

import pytest

from gh_harness import Harness, fingerprint, wait_for
from otel_autoheal.sinks.github.markers import data_line, marker_for
from tests.github_standin.server import GitHubStandin


def _write_starts(standin: GitHubStandin) -> list[float]:
    return sorted(e.start for e in standin.log() if e.content_creating)


def test_outage_then_everything_is_filed_once(harness: Harness) -> None:
    """During a 502 outage nothing is lost; after it every group is filed exactly once."""
    harness.standin.outage()
    harness.start()
    fps = [fingerprint(f"outage{i}") for i in range(4)]
    for fp in fps:
        harness.emit(fp)
    wait_for(lambda: sum(e.status == 502 for e in harness.standin.log()) >= 5, what="retries during the outage")
    status = harness.status()
    assert status["outbox"]["pending"] == 4 and status["issues_filed"] == 0
    assert "502" in (status["last_error"] or "")
    harness.standin.end_outage()
    wait_for(lambda: harness.status()["issues_filed"] == 4, timeout=60, what="filing after the outage")
    harness.wait_idle()
    bodies = [i["body"] for i in harness.standin.issues()]
    assert len(bodies) == 4
    assert all(sum(f"fingerprint={fp}" in b for b in bodies) == 1 for fp in fps)


@pytest.mark.github_standin(search_lag=3600.0)
def test_create_that_timed_out_after_reaching_github_is_not_duplicated(harness: Harness) -> None:
    """A create that GitHub performed but answered too late is found by its marker, not filed twice."""
    harness.standin.fault("hang", count=1, seconds=3.0, process_first=True, methods=["POST"], path_pattern=r"/issues$")
    harness.start(request_timeout=1.0)
    fp = fingerprint("slow-create")
    harness.emit(fp)
    wait_for(lambda: harness.status()["issues_filed"] == 1, what="the issue to be mapped")
    harness.wait_idle()
    assert len(harness.standin.issues()) == 1
    wait_for(lambda: harness.requests("POST", r"/issues$"), what="the hung create to be logged")
    assert [e.status for e in harness.requests("POST", r"/issues$")] == [201]  # sent once only
    assert harness.sink.ledger.get_issue(fp).issue_number == harness.standin.issues()[0]["number"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "kwargs", "wait"),
    [
        ("secondary", {"retry_after": 2}, 2.0),
        ("too_many", {"retry_after": 2}, 2.0),
        ("primary", {"reset_in": 2}, 1.0),
    ],
)
def test_rate_limit_answers_are_obeyed(harness: Harness, kind: str, kwargs: dict[str, float], wait: float) -> None:
    """After a 403/429 with retry-after or an exhausted primary limit, the next request waits as told."""
    harness.standin.fault(kind, count=1, methods=["POST"], path_pattern=r"/issues$", **kwargs)
    harness.start()
    harness.emit(fingerprint(f"rl-{kind}"))
    harness.emit(fingerprint(f"rl2-{kind}"))
    wait_for(lambda: harness.status()["issues_filed"] == 2, what="filing after the rate limit")
    log = harness.standin.log()
    (limited,) = [e for e in log if e.fault == kind]
    later = [e for e in log if e.seq > limited.seq]
    assert later, "no request after the rate-limit answer"
    if kind == "primary":
        reset = int(limited.time + kwargs["reset_in"])  # the header is whole epoch seconds
        assert all(e.start >= reset for e in later)
    else:
        assert all(e.start >= limited.time + wait for e in later)
    assert len(harness.standin.issues()) == 2


def test_default_spacing_keeps_writes_a_second_apart(harness: Harness) -> None:
    """With default settings a burst of new groups reaches GitHub at least one second per write."""
    harness.start(min_write_interval=1.0)
    for i in range(4):
        harness.emit(fingerprint(f"burst{i}"))
    wait_for(lambda: harness.status()["issues_filed"] == 4, timeout=60, what="the burst to be filed")
    starts = _write_starts(harness.standin)
    assert len(starts) == 4 + 2  # two labels (autoheal, source:cli), four issues
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1.0, gaps


def test_new_issue_cap_keeps_the_rest_waiting_in_the_outbox(harness: Harness) -> None:
    """With a cap of two new issues per hour, the third group waits in the outbox and is reported as backlog."""
    harness.start(new_issues_per_hour=2)
    for i in range(3):
        harness.emit(fingerprint(f"cap{i}"))
    # The issue map and the item's completion are two writes: wait until both are visible.
    wait_for(
        lambda: harness.status()["issues_filed"] == 2 and harness.status()["outbox"]["pending"] == 1,
        what="two issues filed and the third group left pending",
    )
    status = harness.status()
    assert status["outbox"]["pending"] == 1
    assert status["budget"]["new_issues_last_hour"] == 2
    assert len(harness.standin.issues()) == 2


def test_close_returns_promptly_while_waiting_on_a_rate_limit(harness: Harness) -> None:
    """close() interrupts a ten-minute retry-after wait and leaves the work pending."""
    harness.standin.fault("secondary", count=1, retry_after=600, methods=["POST"])
    sink = harness.start()
    harness.emit(fingerprint("blocked"))
    wait_for(lambda: sink.status()["budget"]["blocked_for_seconds"] > 0, what="the block")
    sink.close(timeout=5.0)
    assert not sink.status()["running"]
    assert sink.status()["outbox"]["pending"] == 1
    sink.close()  # idempotent


def test_never_more_than_80_writes_per_minute(harness: Harness) -> None:
    """A burst of 84 new groups is filed completely without GitHub ever seeing more than 80 writes a minute."""
    harness.start(new_issues_per_hour=500, search_before_create=False)  # search has its own, lower limit
    for i in range(84):
        harness.emit(fingerprint(f"flood{i}"))
    wait_for(lambda: harness.status()["budget"]["writes_last_minute"] >= 80, what="the minute budget to fill")
    status = harness.status()
    assert status["outbox"]["pending"] > 0 and status["budget"]["writes_last_minute"] == 80
    wait_for(lambda: harness.status()["issues_filed"] == 84, timeout=150, what="the rest after the minute")
    assert harness.standin.max_writes_in_window(60.0) <= 80
    assert harness.standin.secondary_limit_violations == 0
    assert len(harness.standin.issues()) == 84


def test_issue_filed_before_the_state_was_lost_is_adopted(harness: Harness) -> None:
    """A group whose issue already exists on GitHub (state database lost) is found by search, not refiled."""
    fp = fingerprint("adopt-me")
    header = f"{marker_for(fp)}\n{data_line({'fingerprint': fp, 'source': 'cli'})}\n"
    harness.standin.preload_issue("Old issue", header + "old body\n")
    harness.start()
    harness.emit(fp)
    wait_for(lambda: harness.status()["issues_filed"] == 1, what="the adoption")
    harness.wait_idle()
    assert len(harness.standin.issues()) == 1
    assert harness.requests("POST", r"/issues$") == []
    (search,) = harness.requests("GET", r"^/search/issues$")
    assert search.query["q"] == [f'"{fp}" is:issue repo:{harness.standin.repository} author:autoheal-bot']


def test_searches_stay_under_the_search_limit(harness: Harness) -> None:
    """A burst of 24 new groups never makes GitHub see more than 30 searches a minute."""
    harness.start(new_issues_per_hour=500)
    for i in range(24):
        harness.emit(fingerprint(f"search-burst{i}"))
    wait_for(lambda: harness.status()["issues_filed"] >= 20, what="the first twenty")
    assert harness.status()["outbox"]["pending"] == 4  # waiting for search budget, not lost
    assert harness.standin.search_limit_violations == 0
