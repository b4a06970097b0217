"""Copilot hand-off: the gates, the request GitHub receives, and the 403 path."""

from __future__ import annotations

from gh_harness import Harness, fingerprint, wait_for
from otel_autoheal.sinks.github.messages import CUSTOM_INSTRUCTIONS

COPILOT = {"handoff": "copilot", "handoff_min_occurrences": 2}


def _handoffs(harness: Harness) -> dict[str, int]:
    return dict(harness.status()["handoff"]["counts"])


def test_trusted_group_with_in_app_frames_is_assigned_with_our_instructions(harness: Harness) -> None:
    """After two occurrences a CLI error is assigned to Copilot with our constant instructions only."""
    harness.start(**COPILOT, handoff_base_branch="main")
    fp = fingerprint("assign-me")
    harness.emit(fp)
    harness.wait_idle()
    assert harness.requests("POST", r"/assignees$") == []  # below the minimum occurrences
    harness.emit(fp)
    wait_for(lambda: _handoffs(harness).get("assigned") == 1, what="the hand-off")
    (req,) = harness.requests("POST", r"/assignees$")
    assert req.body["assignees"] == ["copilot-swe-agent[bot]"]
    assert req.body["agent_assignment"] == {
        "target_repo": harness.standin.repository,
        "base_branch": "main",
        "custom_instructions": CUSTOM_INSTRUCTIONS,
    }
    (issue,) = harness.standin.issues()
    assert issue["assignees"] == ["Copilot"]
    harness.emit(fp)
    harness.emit(fp)
    harness.wait_idle()
    assert len(harness.requests("POST", r"/assignees$")) == 1  # never twice


def test_untrusted_no_in_app_and_open_pr_groups_are_never_assigned(harness: Harness) -> None:
    """Browser errors, errors without app frames and issues with an open PR are not handed off."""
    harness.start(**COPILOT)
    browser, library, with_pr = fingerprint("browser"), fingerprint("library"), fingerprint("has-pr")
    harness.emit(browser, source="browser")
    harness.emit(library, in_app=False)
    harness.emit(with_pr)
    harness.wait_idle()
    pr_issue = harness.sink.ledger.get_issue(with_pr).issue_number  # type: ignore[union-attr]
    harness.standin.open_pull_request(pr_issue)
    for _ in range(5):
        harness.emit(browser, source="browser")
        harness.emit(library, in_app=False)
    harness.emit(with_pr)
    wait_for(lambda: _handoffs(harness).get("skipped_open_pr") == 1, what="the open-PR gate")
    harness.wait_idle()
    assert harness.requests("POST", r"/assignees$") == []
    counts = _handoffs(harness)
    assert counts == {"skipped_untrusted": 1, "skipped_no_in_app": 1, "skipped_open_pr": 1}
    assert all(i["assignees"] == [] for i in harness.standin.issues())


def test_untrusted_source_is_assigned_only_when_explicitly_allowed(harness: Harness) -> None:
    """Listing browser in the allowed sources overrides the untrusted default."""
    harness.start(**COPILOT, handoff_allow_sources=("browser",))
    fp = fingerprint("allowed-browser")
    harness.emit(fp, source="browser")
    harness.emit(fp, source="browser")
    wait_for(lambda: _handoffs(harness).get("assigned") == 1, what="the allowed hand-off")


def test_daily_budget_keeps_extra_handoffs_queued(harness: Harness) -> None:
    """With a daily budget of one, the second eligible issue stays queued in the outbox."""
    harness.start(**COPILOT, handoff_daily_budget=1)
    a, b = fingerprint("budget-a"), fingerprint("budget-b")
    for fp in (a, b, a, b):
        harness.emit(fp)
    wait_for(lambda: _handoffs(harness).get("assigned") == 1, what="the first hand-off")
    wait_for(lambda: harness.status()["outbox"]["pending"] == 1, what="the second hand-off waiting")
    assert _handoffs(harness) == {"assigned": 1, "queued": 1}
    assert harness.status()["budget"]["handoffs_last_day"] == 1
    assert len(harness.requests("POST", r"/assignees$")) == 1


def test_dry_run_assigns_nothing(harness: Harness) -> None:
    """In dry-run mode the gates run but no assignee request is sent."""
    harness.start(**COPILOT, handoff_dry_run=True)
    fp = fingerprint("dry")
    harness.emit(fp)
    harness.emit(fp)
    wait_for(lambda: _handoffs(harness).get("dry_run") == 1, what="the dry run")
    assert harness.requests("POST", r"/assignees$") == []


def test_copilot_403_is_reported_with_the_token_requirements(harness: Harness) -> None:
    """A 403 on the assignment (GITHUB_TOKEN, no seat) is reported in status and does not stop filing."""
    harness.standin.copilot_forbidden = True
    harness.start(**COPILOT)
    fp = fingerprint("forbidden")
    harness.emit(fp)
    harness.emit(fp)
    wait_for(lambda: _handoffs(harness).get("forbidden") == 1, what="the refused hand-off")
    error = harness.status()["handoff"]["last_error"]
    assert "403" in error and "user" in error and "GITHUB_TOKEN" in error
    harness.emit(fingerprint("still-filing"))
    wait_for(lambda: harness.status()["issues_filed"] == 2, what="filing to go on")
    assert harness.status()["paused"] is None


def test_copilot_not_enabled_is_reported(harness: Harness) -> None:
    """When GitHub drops Copilot from the assignees silently, status says the agent is not enabled."""
    harness.standin.copilot_assignable = False
    harness.start(**COPILOT)
    fp = fingerprint("no-seat")
    harness.emit(fp)
    harness.emit(fp)
    wait_for(lambda: _handoffs(harness).get("not_assignable") == 1, what="the no-op hand-off")
    assert "not enabled" in harness.status()["handoff"]["last_error"]


def test_group_first_seen_in_the_browser_stays_untrusted(harness: Harness) -> None:
    """The issue body came from a browser occurrence, so later CLI occurrences do not make it trusted."""
    harness.start(**COPILOT)
    fp = fingerprint("mixed-sources")
    harness.emit(fp, source="browser")
    for _ in range(3):
        harness.emit(fp, source="cli")
    harness.wait_idle()
    assert _handoffs(harness) == {"skipped_untrusted": 1}
    assert harness.requests("POST", r"/assignees$") == []
    assert harness.standin.issues()[0]["labels"] == ["autoheal", "source:browser"]
