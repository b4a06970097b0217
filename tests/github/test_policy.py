"""The GitHub sink's decision policy, one rule at a time: pure functions, no SQLite, HTTP or clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gh_occurrences import fingerprint, make_occurrence
from otel_autoheal.model import GroupRecord, GroupUpdate
from otel_autoheal.sinks.github import policy
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.markers import marker_for, parse_header
from otel_autoheal.sinks.github.records import FixRow, IssueRow

FP = fingerprint("policy")
NOW = 1_700_000_000.0
CLOSED_AT = NOW - 1000.0


def config(**overrides: Any) -> GitHubConfig:
    env = {"GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t0ken"}
    return GitHubConfig.from_env(env, {"state_check_interval": 300.0, **overrides}, use_gh_cli=False)


def update(count: int = 1, *, is_new: bool = False, new_version: bool = False, **occ: Any) -> GroupUpdate:
    """An occurrence of group ``FP`` (version 1.0.0, source cli, in-app frames unless told otherwise)."""
    o = make_occurrence(FP, **occ)
    group = GroupRecord(id=1, fingerprint=FP, title=o.title, body=o.body, count=count, first_seen=NOW - 5000,
                        last_seen=NOW, service="shop", exception_type="ValueError", source=o.exception.source,
                        versions=(o.exception.service_version,), trace_ids=())
    return GroupUpdate(group=group, occurrence=o, is_new=is_new, new_version=new_version)


def issue(**values: Any) -> IssueRow:
    """A filed, open issue with two occurrences, checked just now, trusted by the receiver."""
    base = IssueRow(fingerprint=FP, issue_number=7, source="cli", count=2, newest_version="1.0.0", state="open",
                    state_reason="", closed_at=None, closed_version="", state_checked_at=NOW, last_comment_at=0.0,
                    milestone=0, has_in_app=True, handoff="", trusted=True, provenance="attribute")
    return replace(base, **values)


def closed(reason: str = "completed", version: str = "2.0.0", **values: Any) -> IssueRow:
    return issue(state="closed", state_reason=reason, closed_at=CLOSED_AT, closed_version=version, **values)


def fix(**values: Any) -> FixRow:
    base = FixRow(id=3, fingerprint=FP, closed_at=CLOSED_AT, pr_number=12, commit_sha="abc", merged_at=CLOSED_AT - 10,
                  base_version="", fix_version="", deployed_at=None, state="merged", stale=0, regressed_version="")
    return replace(base, **values)


def kinds(decision: policy.Decision) -> list[str]:
    return [c.kind for c in decision.commands]


def command(decision: policy.Decision, kind: str) -> policy.Command:
    (found,) = [c for c in decision.commands if c.kind == kind]
    return found


def new_group(cfg: GitHubConfig | None = None, **occ: Any) -> policy.Decision:
    row = issue(issue_number=None, count=0, has_in_app=False, trusted=None, provenance="", source="")
    return policy.decide(update(1, is_new=True, **occ), policy.Stored(row), cfg or config(), NOW)


# ---------------------------------------------------------------- new issue


def test_new_group_is_created_with_labels_and_our_header() -> None:
    """A new group queues one create: labels autoheal, configured ones and source:<source>; the header on top."""
    decision = new_group(config(labels=("team-a",)))
    assert kinds(decision) == ["create"]
    create = command(decision, "create")
    assert not create.fold and create.payload["labels"] == ["autoheal", "team-a", "source:cli"]
    body = create.payload["body"]
    assert body.splitlines()[0] == marker_for(FP)
    data = parse_header(body)
    assert data is not None and data["fingerprint"] == FP
    assert (data["count"], data["in_app"], data["trusted_source"], data["provenance"]) == (1, True, True, "attribute")
    assert decision.issue["count"] == 1 and decision.issue["source"] == "cli" and decision.issue["trusted"] == 1


def test_title_is_cut_to_githubs_limit() -> None:
    """The issue title is at most 256 characters."""
    o = update(1, is_new=True)
    long = replace(o, occurrence=replace(o.occurrence, title="E" * 300))
    row = issue(issue_number=None, count=0)
    assert len(command(policy.decide(long, policy.Stored(row), config(), NOW), "create").payload["title"]) == 256


@pytest.mark.parametrize(("queued", "failed"), [(True, False), (False, True)])
def test_create_is_not_queued_twice_nor_after_it_failed(queued: bool, failed: bool) -> None:
    """An unfiled group with a create pending (or given up) gets no second create."""
    row = issue(issue_number=None)
    decision = policy.decide(update(3), policy.Stored(row, create_queued=queued, create_failed=failed), config(), NOW)
    assert "create" not in kinds(decision)
    assert decision.issue["count"] == 3  # still counted


def test_untrusted_origin_is_recorded_in_the_header() -> None:
    """A browser occurrence (no receiver verdict) is created as untrusted, basis attribute."""
    data = parse_header(command(new_group(source="browser"), "create").payload["body"])
    assert data is not None and data["trusted_source"] is False and data["provenance"] == "attribute"


# ---------------------------------------------------------------- milestone comments


@pytest.mark.parametrize(("count", "milestone"), [(1, 0), (9, 0), (10, 10), (99, 10), (100, 100), (1000, 1000),
                                                 (12345, 10000)])
def test_milestones_are_powers_of_ten(count: int, milestone: int) -> None:
    """The milestone reached is the largest power of ten not above the count, from 10 on."""
    assert policy.is_milestone(count) == milestone


def test_reaching_a_milestone_queues_a_folded_comment() -> None:
    """The tenth occurrence queues a comment naming the milestone; the eleventh queues none."""
    decision = policy.decide(update(10), policy.Stored(issue(count=9)), config(), NOW)
    comment = command(decision, "comment")
    assert comment.fold and comment.payload["reasons"] == ["reached 10 occurrences"]
    assert comment.payload["count"] == 10 and decision.issue["milestone"] == 10
    assert "comment" not in kinds(policy.decide(update(11), policy.Stored(issue(count=10, milestone=10)), config(),
                                                NOW))


def test_new_version_queues_a_comment_but_not_on_the_first_occurrence() -> None:
    """A new service.version is a comment reason, except for the occurrence that created the issue."""
    decision = policy.decide(update(3, new_version=True, version="1.1.0"), policy.Stored(issue()), config(), NOW)
    assert command(decision, "comment").payload["reasons"] == ["first occurrence in version `1.1.0`"]
    assert decision.issue["newest_version"] == "1.1.0"
    assert "comment" not in kinds(new_group())


def test_hostile_version_is_made_inert_in_the_reason() -> None:
    """A version with Markdown in it reaches the comment reason neutralised."""
    decision = policy.decide(update(3, new_version=True, version="1.0`<b>"), policy.Stored(issue()), config(), NOW)
    assert command(decision, "comment").payload["reasons"] == ["first occurrence in version `1.0__b_`"]


def test_comment_interval_and_state_check() -> None:
    """One comment per comment_interval; an open issue's state is re-read once it is older than the interval."""
    cfg = config(comment_interval=3600.0)
    assert policy.comment_due(issue(last_comment_at=NOW), cfg) == NOW + 3600.0
    row = issue(count=3, state_checked_at=NOW - 301)
    stale_state = policy.decide(update(4), policy.Stored(row), config(), NOW)
    assert kinds(stale_state) == ["check"] and command(stale_state, "check").payload["ts"] == NOW
    assert kinds(policy.decide(update(4), policy.Stored(issue(count=3)), config(), NOW)) == []


# ---------------------------------------------------------------- regressions and reopens


def test_closed_as_completed_reopens_in_the_same_or_a_newer_version() -> None:
    """An occurrence in the closing version or a newer one reopens; no comment goes with it."""
    for version in ("2.0.0", "2.1.0"):
        decision = policy.decide(update(12, version=version), policy.Stored(closed(count=9)), config(), NOW)
        assert kinds(decision) == ["reopen"] and command(decision, "reopen").payload["version"] == version


def test_closed_issue_is_not_reopened_by_an_older_version() -> None:
    """A stale client in an older version is only counted."""
    decision = policy.decide(update(3, version="1.9.0"), policy.Stored(closed()), config(), NOW)
    assert kinds(decision) == [] and decision.issue["count"] == 3


def test_unparsable_versions_use_the_order_they_were_seen_in() -> None:
    """Without PEP 440 versions, one seen before the close is older; one never seen before reopens."""
    history = policy.History(seen_by_close=("build-blue", "build-green"))
    row = closed(version="build-green")
    assert not policy.regresses(row, "build-blue", history).reopens
    assert policy.regresses(row, "build-red", history).reopens


def test_closed_as_not_planned_is_muted() -> None:
    """Closed as not planned: no reopen, no comment, no data refresh and no hand-off, only the count."""
    row = closed(reason="not_planned", count=9)
    decision = policy.decide(update(10, version="3.0.0", new_version=True), policy.Stored(row),
                             config(handoff="copilot"), NOW)
    assert kinds(decision) == [] and decision.issue["count"] == 10 and "handoff" not in decision.issue
    assert not policy.regresses(row, "3.0.0", policy.History()).reopens


def test_merged_fix_not_deployed_yet_counts_versioned_occurrences_as_stale() -> None:
    """Before a version carrying the fix is seen, a versioned occurrence is a stale build: counted on the fix."""
    history = policy.History(fix=fix(stale=4), service_versions=(("2.0.0", CLOSED_AT - 100),))
    decision = policy.decide(update(3, version="2.0.0"), policy.Stored(closed(), history=history), config(), NOW)
    assert kinds(decision) == []
    assert decision.fix_changes == (policy.FixChange(3, {"stale": 5}),)
    assert policy.regresses(closed(), "", history).reopens  # unversioned: cannot be told apart, reopens


def test_fix_is_deployed_by_the_first_newer_version_after_the_merge() -> None:
    """A newer version of the service seen after the merge settles the fix as deployed in it."""
    versions = (("2.0.0", CLOSED_AT - 100), ("2.1.0", CLOSED_AT + 50))
    settled = policy.settle(fix(), versions, "2.0.0")
    assert (settled.state, settled.base_version, settled.fix_version, settled.deployed_at) == (
        "deployed", "2.0.0", "2.1.0", CLOSED_AT + 50)
    assert policy.settle(fix(), versions[:1], "2.0.0") == fix()  # nothing newer yet: still merged


def test_deployed_fix_reopens_at_or_after_the_fix_version_only() -> None:
    """With the fix deployed in 2.1.0, 2.1.0 reopens (and stores the deploy); 2.0.0 is a stale build."""
    versions = (("2.0.0", CLOSED_AT - 100), ("2.1.0", CLOSED_AT + 50))
    history = policy.History(fix=fix(), service_versions=versions)
    decision = policy.decide(update(5, version="2.1.0"), policy.Stored(closed(), history=history), config(), NOW)
    assert kinds(decision) == ["reopen"]
    (deployed,) = decision.fix_changes
    assert deployed.values == {"base_version": "2.0.0", "fix_version": "2.1.0", "deployed_at": CLOSED_AT + 50,
                               "state": "deployed"}
    older = policy.decide(update(5, version="2.0.0"), policy.Stored(closed(), history=history), config(), NOW)
    assert kinds(older) == [] and older.fix_changes[-1] == policy.FixChange(3, {"stale": 1})


def test_verification_is_due_a_window_after_the_deploy_or_the_last_occurrence() -> None:
    """The closing comment is due verify_window after the later of the deploy and the last occurrence."""
    deployed = fix(state="deployed", fix_version="2.1.0", deployed_at=NOW - 100)
    assert policy.verify_due(deployed, NOW - 500, 3600.0, NOW) == NOW - 100 + 3600.0
    assert policy.verify_due(deployed, NOW - 10, 3600.0, NOW) == NOW - 10 + 3600.0


# ---------------------------------------------------------------- data block


@pytest.mark.parametrize(
    ("row", "occ", "count"),
    [
        (issue(count=2), {}, 3),  # reaches handoff_min_occurrences (3)
        (issue(count=9, milestone=0), {}, 10),  # a milestone
        (issue(trusted=True), {"ingest_trust": "untrusted"}, 3),  # provenance turns untrusted
        (issue(has_in_app=False, count=5), {}, 6),  # first in-app frame
    ],
)
def test_gate_facts_changing_refresh_the_data_block(row: IssueRow, occ: dict[str, Any], count: int) -> None:
    """When a fact the gate reads changes on an open issue, a data command carries the new facts."""
    decision = policy.decide(update(count, **occ), policy.Stored(row), config(), NOW)
    data = command(decision, "data").payload
    assert data["count"] == count and set(data) == {"count", "in_app", "trusted_source", "provenance"}


def test_data_block_is_left_alone_when_nothing_changed_or_the_issue_is_closed() -> None:
    """No data command for an unchanged fact set, nor for a closed issue."""
    assert "data" not in kinds(policy.decide(update(4), policy.Stored(issue(count=3)), config(), NOW))
    assert "data" not in kinds(policy.decide(update(3), policy.Stored(closed(count=2)), config(), NOW))


def test_untrusted_is_for_good() -> None:
    """Once a group is untrusted, a later trusted occurrence does not make it trusted again."""
    row = issue(trusted=False, provenance="receiver")
    decision = policy.decide(update(3, ingest_trust="trusted"), policy.Stored(row), config(), NOW)
    assert (decision.issue["trusted"], decision.issue["provenance"]) == (0, "receiver")


# ---------------------------------------------------------------- hand-off to Copilot


def test_eligible_group_is_handed_off_once() -> None:
    """Enough occurrences, trusted, in-app frames: one handoff command and the issue marked queued."""
    decision = policy.decide(update(3), policy.Stored(issue()), config(handoff="copilot"), NOW)
    assert command(decision, "handoff") == policy.Command("handoff", {}, fold=False)
    assert decision.issue["handoff"] == "queued"
    again = policy.decide(update(4), policy.Stored(issue(count=3, handoff="queued")), config(handoff="copilot"), NOW)
    assert "handoff" not in kinds(again) and "handoff" not in again.issue


def test_handoff_waits_for_enough_occurrences_and_is_off_by_default() -> None:
    """Below handoff_min_occurrences nothing is recorded (it may pass later); mode none never hands off."""
    early = policy.decide(update(2), policy.Stored(issue(count=1)), config(handoff="copilot"), NOW)
    assert "handoff" not in kinds(early) and "handoff" not in early.issue
    assert "handoff" not in kinds(policy.decide(update(3), policy.Stored(issue()), config(), NOW))


@pytest.mark.parametrize(
    ("occ", "overrides", "outcome"),
    [
        ({"source": "browser"}, {}, "skipped_untrusted"),
        ({"ingest_trust": "untrusted"}, {}, "skipped_untrusted"),
        ({"in_app": False}, {}, "skipped_no_in_app"),
    ],
)
def test_handoff_refusals_that_waiting_cannot_change_are_recorded(
    occ: dict[str, Any], overrides: dict[str, Any], outcome: str
) -> None:
    """Untrusted provenance and no in-app frames are recorded as skipped, with the reason for the log."""
    row = issue(has_in_app=False, trusted=None, source="")
    decision = policy.decide(update(3, **occ), policy.Stored(row), config(handoff="copilot", **overrides), NOW)
    assert "handoff" not in kinds(decision)
    assert decision.issue["handoff"] == outcome and decision.handoff_refusal


def test_allowed_sources_and_in_app_setting_open_the_gate() -> None:
    """handoff_allow_sources admits an untrusted source; handoff_require_in_app=false admits no in-app frames."""
    row = issue(has_in_app=False, trusted=None, source="")
    allowed = config(handoff="copilot", handoff_allow_sources=("browser",))
    assert "handoff" in kinds(policy.decide(update(3, source="browser"), policy.Stored(row), allowed, NOW))
    no_in_app = config(handoff="copilot", handoff_require_in_app=False)
    assert "handoff" in kinds(policy.decide(update(3, in_app=False), policy.Stored(row), no_in_app, NOW))
