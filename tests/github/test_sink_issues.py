"""Filing, milestones, regressions and muting, through real PyGithub over HTTP to the stand-in."""

from __future__ import annotations

from gh_harness import Harness, fingerprint, wait_for


def test_n_occurrences_of_k_errors_make_k_issues(harness: Harness) -> None:
    """Twelve interleaved occurrences of each of three errors file exactly three labelled issues."""
    harness.start(labels=("bug", "from-prod"))
    fps = [fingerprint(f"k{i}") for i in range(3)]
    for _ in range(12):
        for fp in fps:
            harness.emit(fp)
    harness.wait_idle()
    issues = harness.standin.issues()
    assert len(issues) == 3
    for fp in fps:
        (issue,) = [i for i in issues if f"autoheal:fingerprint={fp}" in i["body"]]
        assert issue["labels"] == ["autoheal", "bug", "from-prod", "source:cli"]
        assert len(issue["comments"]) == 1 and "reached 10 occurrences" in issue["comments"][0]
        assert f"autoheal:fingerprint={fp}" not in issue["comments"][0]
    assert len(harness.requests("POST", r"/labels$")) == 4  # each missing label created once
    assert len(harness.requests("POST", r"/issues$")) == 3
    status = harness.status()
    assert status["issues_filed"] == 3 and status["outbox"]["failed"] == 0


def test_milestones_and_new_versions_are_coalesced_per_interval(harness: Harness) -> None:
    """A milestone and a new version arriving together make one comment; the next waits for the interval."""
    harness.start(comment_interval=3600.0)
    fp = fingerprint("coalesce")
    for _ in range(9):
        harness.emit(fp, version="1.0.0")
    harness.wait_idle()
    harness.emit(fp, version="1.1.0")  # 10th occurrence, new version
    wait_for(lambda: harness.standin.issues()[0]["comments"], what="the first comment")
    harness.emit(fp, version="1.2.0")
    harness.emit(fp, version="1.3.0")

    def pending_comments() -> list[str]:
        with harness.store.transaction() as conn:
            rows = conn.execute("SELECT payload FROM github_outbox WHERE state = 'pending' AND kind = 'comment'")
            return [r[0] for r in rows]

    (payload,) = wait_for(lambda: [p for p in pending_comments() if "1.3.0" in p], what="a coalesced comment")
    assert "1.2.0" in payload  # both new versions folded into one pending comment
    harness.emit(fp, version="1.3.0")
    wait_for(lambda: harness.status()["outbox"]["pending"] == 1, what="only the comment left pending")
    (issue,) = harness.standin.issues()
    assert len(issue["comments"]) == 1
    assert "reached 10 occurrences" in issue["comments"][0]
    assert "first occurrence in version `1.1.0`" in issue["comments"][0]


def test_closed_issue_reopens_only_for_versions_not_older(harness: Harness) -> None:
    """After a close in 2.0.0, an occurrence in 1.9.0 does not reopen and one in 2.1.0 does."""
    harness.start()
    fp = fingerprint("regress")
    harness.emit(fp, version="2.0.0")
    harness.wait_idle()
    number = harness.standin.issues()[0]["number"]
    harness.standin.close_issue(number, "completed")
    harness.emit(fp, version="1.9.0")
    harness.wait_idle()
    wait_for(lambda: len(harness.requests("GET", rf"/issues/{number}$")) >= 1, what="a state check")
    assert harness.standin.issues()[0]["state"] == "closed"
    harness.emit(fp, version="2.1.0")
    wait_for(lambda: harness.standin.issues()[0]["state"] == "open", what="the reopen")
    harness.wait_idle()
    (issue,) = harness.standin.issues()
    assert issue["state_reason"] == "reopened"
    (comment,) = issue["comments"]
    assert "regression" in comment and "closed in version `2.0.0`" in comment and "`2.1.0`" in comment
    reopen = list(harness.requests("PATCH", rf"/issues/{number}$"))
    assert len(reopen) == 1 and reopen[0].body == {"state": "open", "state_reason": "reopened"}


def test_closed_as_not_planned_is_muted(harness: Harness) -> None:
    """An issue closed as not planned is never reopened or commented, even at a milestone or new version."""
    harness.start()
    fp = fingerprint("muted")
    harness.emit(fp)
    harness.wait_idle()
    number = harness.standin.issues()[0]["number"]
    harness.standin.close_issue(number, "not_planned")
    harness.emit(fp)
    wait_for(lambda: harness.sink.ledger.get_issue(fp).muted, what="the muted state to be read")  # type: ignore[union-attr]
    for i in range(12):
        harness.emit(fp, version=f"9.{i}.0")
    harness.wait_idle()
    (issue,) = harness.standin.issues()
    assert issue["state"] == "closed" and issue["comments"] == []
    assert harness.requests("PATCH", r"/issues/\d+$") == []
    assert harness.sink.ledger.get_issue(fp).count == 14  # type: ignore[union-attr]


def test_body_too_long_fails_once_and_the_worker_moves_on(harness: Harness) -> None:
    """A 422 for an over-long body marks that item failed with GitHub's reason, without retrying it."""
    harness.start()
    bad, good = fingerprint("too-long"), fingerprint("fine")
    harness.emit(bad, body_size=70000)
    harness.emit(good)
    wait_for(lambda: harness.status()["issues_filed"] == 1, what="the good issue")
    harness.wait_idle()
    status = harness.status()
    assert status["outbox"]["failed"] == 1
    (failure,) = status["outbox"]["recent_failures"]
    assert failure["kind"] == "create" and "body is too long (maximum is 65536 characters)" in failure["reason"]
    harness.emit(bad)  # a further occurrence does not retry the hopeless create
    harness.emit(good)
    harness.wait_idle()
    creates = harness.requests("POST", r"/issues$")
    assert [e.status for e in creates].count(422) == 1
    assert "body is too long" in (status["last_error"] or "")


def test_occurrence_folded_in_while_its_comment_is_sent_is_not_lost(harness: Harness) -> None:
    """A new version arriving while the milestone comment is on the wire gets its own comment afterwards."""
    harness.start()
    fp = fingerprint("race")
    for _ in range(9):
        harness.emit(fp)
    harness.wait_idle()
    harness.standin.fault("hang", count=1, seconds=1.0, process_first=True, methods=["POST"],
                          path_pattern=r"/comments$")
    harness.emit(fp)  # 10th: milestone comment, held up at GitHub
    wait_for(lambda: any(m == "POST" and p.endswith("/comments") for m, p in harness.standin.in_flight_requests),
             what="the comment on the wire")
    harness.emit(fp, version="7.0.0")
    wait_for(lambda: len(harness.standin.issues()[0]["comments"]) == 2, what="the second comment")
    first, second = harness.standin.issues()[0]["comments"]
    assert "reached 10 occurrences" in first and "7.0.0" not in first
    assert "first occurrence in version `7.0.0`" in second
