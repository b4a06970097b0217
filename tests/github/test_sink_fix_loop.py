"""Closing the loop: a fix merged on GitHub, deployed in a new version, then regressed, stale or verified."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from gh_harness import Harness, fingerprint, wait_for
from otel_autoheal.errors import SinkConfigError
from otel_autoheal.sinks.github import GitHubConfig, offline_status
from otel_autoheal.sinks.github.fixes import deployed_version
from otel_autoheal.sinks.github.records import FixRow

#: The sink lists updated issues this often; small so the close is learnt while the error is silent.
POLL = 0.2


def fixed(harness: Harness, **overrides: float) -> tuple[str, str, int, int]:
    """Files groups A and B of service ``shop`` in 1.0.0, merges a PR fixing A's issue, waits for the sink to see it."""
    harness.start(issue_poll_interval=POLL, **overrides)
    a, b = fingerprint("loop-a"), fingerprint("loop-b")
    harness.emit(a, version="1.0.0")
    harness.emit(b, version="1.0.0")
    harness.wait_idle()
    number = issue_of(harness, a)["number"]
    pr = harness.standin.open_pull_request(number)
    harness.standin.merge_pull_request(pr)
    wait_for(lambda: harness.status()["fixes"]["awaiting_deploy"] == 1, what="the merged fix to be found")
    return a, b, number, pr


def issue_of(harness: Harness, fp: str) -> dict:  # type: ignore[type-arg]
    (issue,) = [i for i in harness.standin.issues() if f"autoheal:fingerprint={fp}" in (i["body"] or "")]
    return issue


def fix_of(harness: Harness, fp: str) -> FixRow:
    assert harness.sink is not None
    fix = harness.sink.ledger.fix(fp, active_only=False)
    assert fix is not None
    return fix


def deploy(harness: Harness, b: str, version: str = "1.1.0") -> None:
    """Another group of the same service shows up in ``version``: the fix is deployed."""
    harness.emit(b, version=version)
    wait_for(lambda: harness.status()["fixes"]["deployed"] == 1, what="the deploy of the fix")


def test_fix_found_from_merged_pr_and_regression_reopens_naming_it(harness: Harness) -> None:
    """A recurrence in the version carrying the fix reopens the issue with a comment naming the PR and version."""
    a, b, number, pr = fixed(harness)
    fix = fix_of(harness, a)
    assert fix.pr_number == pr and fix.state == "merged" and fix.fix_version == ""
    assert harness.requests("GET", rf"/issues/{number}/timeline$") and harness.requests("GET", rf"/pulls/{pr}$")
    deploy(harness, b)
    fix = fix_of(harness, a)
    assert (fix.base_version, fix.fix_version) == ("1.0.0", "1.1.0")
    harness.emit(a, version="1.1.0")
    wait_for(lambda: issue_of(harness, a)["state"] == "open", what="the reopen")
    harness.wait_idle()
    issue = issue_of(harness, a)
    (comment,) = issue["comments"]
    assert "the fix did not hold" in comment and f"PR #{pr}" in comment
    assert "first deployed in version `1.1.0`" in comment and "back in version `1.1.0`" in comment
    assert "ValueError: bad order" in comment  # the newest occurrence's rendered body
    status = harness.status()["fixes"]
    assert status["regressed"] == 1 and status["deployed"] == 0 and status["awaiting_deploy"] == 0
    assert fix_of(harness, a).regressed_version == "1.1.0"


def test_occurrences_in_builds_without_the_fix_are_counted_not_reopened(harness: Harness) -> None:
    """Before the deploy and from stale clients after it, occurrences in 1.0.0 leave the fixed issue closed."""
    a, b, number, _ = fixed(harness)
    harness.emit(a, version="1.0.0")  # merged, not deployed yet
    deploy(harness, b)
    harness.emit(a, version="1.0.0")  # a client still running the old build
    harness.wait_idle()
    issue = issue_of(harness, a)
    assert issue["state"] == "closed" and issue["comments"] == []
    assert harness.requests("PATCH", rf"/issues/{number}$") == []
    fix = fix_of(harness, a)
    assert fix.state == "deployed" and fix.stale == 2
    assert harness.store.group_by_fingerprint(a).count == 3  # type: ignore[union-attr]


def test_silence_after_deploy_posts_one_closing_comment_across_restarts(harness: Harness) -> None:
    """A group silent for the verify window gets exactly one closing comment with the numbers, also after restarts."""
    a, b, number, pr = fixed(harness, verify_window=2.0)
    deploy(harness, b)
    harness.sink.close()  # type: ignore[union-attr]
    harness.start(issue_poll_interval=POLL, verify_window=2.0)  # the deploy and the fix survive in the state

    def closing() -> list[str]:
        return [c for c in issue_of(harness, a)["comments"] if "fix verified" in c]

    (comment,) = wait_for(closing, what="the closing comment")
    harness.wait_idle()
    assert f"PR #{pr}" in comment and "deployed in version `1.1.0`" in comment
    assert "| Occurrences in total | 1 |" in comment and "| Versions seen | `1.0.0` |" in comment
    assert re.search(r"\| First seen \| \d{4}-\d\d-\d\d \d\d:\d\d UTC \|", comment)
    assert re.search(r"\| Silent since the deploy \| \d+ (seconds|minutes) \|", comment)
    assert "<!-- autoheal:outbox=" in comment and "autoheal:fingerprint" not in comment
    assert issue_of(harness, a)["state"] == "closed" and issue_of(harness, b)["comments"]  # B: new version noted
    assert harness.status()["fixes"]["verified"] == 1
    harness.sink.close()  # type: ignore[union-attr]

    harness.start(issue_poll_interval=POLL, verify_window=2.0)
    listed = rf"^/repos/{harness.standin.repository}/issues$"
    polls = len(harness.requests("GET", listed))
    wait_for(lambda: len(harness.requests("GET", listed)) >= polls + 3, what="three polls after the restart")
    harness.wait_idle()
    assert len(closing()) == 1
    assert len(harness.requests("POST", rf"/issues/{number}/comments$")) == 1
    info = offline_status(SimpleNamespace(state_dir=harness.state_dir, github={}), env=harness.standin.env())
    assert info["fixes"]["verified"] == 1 and info["fixes"]["awaiting_deploy"] == 0


def test_without_the_poll_the_fix_is_learnt_from_the_next_occurrence(harness: Harness) -> None:
    """With the issue poll off, the state check of a recurrence finds the merged PR; the same rule then applies."""
    harness.start(issue_poll_interval=0.0)
    a, b = fingerprint("nopoll-a"), fingerprint("nopoll-b")
    harness.emit(a, version="1.0.0")
    harness.emit(b, version="1.0.0")
    harness.wait_idle()
    number = issue_of(harness, a)["number"]
    pr = harness.standin.open_pull_request(number)
    harness.standin.merge_pull_request(pr)
    harness.emit(a, version="1.0.0")  # the check it queues reads the close and the timeline
    wait_for(lambda: harness.status()["fixes"]["awaiting_deploy"] == 1, what="the fix from the state check")
    harness.wait_idle()
    assert fix_of(harness, a).stale == 1 and issue_of(harness, a)["state"] == "closed"
    harness.emit(b, version="2.0.0")
    harness.emit(a, version="2.0.0")  # the first build with the fix shows the error again
    wait_for(lambda: issue_of(harness, a)["state"] == "open", what="the reopen")
    harness.wait_idle()
    assert f"PR #{pr}" in issue_of(harness, a)["comments"][0] and "`2.0.0`" in issue_of(harness, a)["comments"][0]
    assert not harness.requests("GET", rf"^/repos/{harness.standin.repository}/issues$")  # no poll was made


def test_manual_close_without_pr_keeps_the_closing_version_rule(harness: Harness) -> None:
    """A close with no merged PR or commit records no fix; the version it was closed in stays the threshold."""
    harness.start(issue_poll_interval=POLL)
    a = fingerprint("manual")
    harness.emit(a, version="2.0.0")
    harness.wait_idle()
    number = issue_of(harness, a)["number"]
    harness.standin.close_issue(number)
    wait_for(lambda: harness.sink.ledger.get_issue(a).state == "closed", what="the close")  # type: ignore[union-attr]
    assert harness.requests("GET", rf"/issues/{number}/timeline$")
    harness.emit(a, version="2.0.0")
    wait_for(lambda: issue_of(harness, a)["state"] == "open", what="the reopen")
    harness.wait_idle()
    assert "closed in version `2.0.0`" in issue_of(harness, a)["comments"][0]
    assert harness.status()["fixes"] == {"awaiting_deploy": 0, "deployed": 0, "verified": 0, "regressed": 0,
                                         "verify_window": 7 * 86400.0}


@pytest.mark.parametrize(
    ("versions", "merged_at", "closed_version", "expected"),
    [
        ([("1.0.0", 1.0), ("1.1.0", 20.0)], 10.0, "", ("1.0.0", "1.1.0", 20.0)),
        ([("1.0.0", 1.0), ("0.9.0", 20.0), ("1.1.0", 30.0)], 10.0, "", ("1.0.0", "1.1.0", 30.0)),  # stale 0.9
        ([("1.0.0", 1.0)], 10.0, "", None),  # merged, not deployed
        ([("1.0.0", 10.5), ("1.1.0", 10.8)], 10.0, "1.0.0", ("1.0.0", "1.1.0", 10.8)),  # same second as merge
        ([("blue", 1.0), ("green", 20.0)], 10.0, "", ("blue", "green", 20.0)),  # not PEP 440: seen after
        ([("blue", 1.0), ("green", 5.0), ("blue", 1.0)], 10.0, "green", None),
    ],
)
def test_deployed_version_rule(
    versions: list[tuple[str, float]], merged_at: float, closed_version: str, expected: object
) -> None:
    """The fix version is the first version of the service after the merge that is newer than the one before it."""
    assert deployed_version(versions, merged_at, closed_version) == expected


def test_loop_settings_are_documented_env_keys() -> None:
    """The verify window and poll interval come from AUTOHEAL_GITHUB_* and bad values name the key."""
    base = {"GITHUB_REPOSITORY": "octo/app", "GITHUB_TOKEN": "t0k"}
    cfg = GitHubConfig.from_env({**base, "AUTOHEAL_GITHUB_VERIFY_WINDOW": "3600",
                                 "AUTOHEAL_GITHUB_ISSUE_POLL_INTERVAL": "60"}, use_gh_cli=False)
    assert cfg.verify_window == 3600.0 and cfg.issue_poll_interval == 60.0
    assert GitHubConfig.from_env(base, use_gh_cli=False).verify_window == 7 * 86400
    for key in ("AUTOHEAL_GITHUB_VERIFY_WINDOW", "AUTOHEAL_GITHUB_ISSUE_POLL_INTERVAL"):
        with pytest.raises(SinkConfigError, match=key):
            GitHubConfig.from_env({**base, key: "-1"}, use_gh_cli=False)
