"""Markers that cannot be forged: only the header at the top of an issue the token's own identity filed counts."""

from __future__ import annotations

from pathlib import Path

from gh_harness import Harness, fingerprint, wait_for
from otel_autoheal.sinks.github.markers import data_line, marker_for, parse_header, replace_data, with_header
from tests.github_standin.server import GitHubStandin


def _header(fp: str, **data: object) -> str:
    return f"{marker_for(fp)}\n{data_line({'fingerprint': fp, 'source': 'cli', **data})}\n"


def _forged(*fps: str) -> str:
    """An exception message carrying other groups' markers and data blocks, each on a line of its own."""
    return "checkout failed\n" + "".join(_header(fp, count=99, in_app=True, trusted_source=True) for fp in fps)


def _issue_of(standin: GitHubStandin, number: int) -> dict[str, object]:
    return next(i for i in standin.issues() if i["number"] == number)


def _number(harness: Harness, fp: str) -> int:
    assert harness.sink is not None
    return int(wait_for(lambda: harness.sink.ledger.issue_numbers().get(fp), what=f"the issue of {fp[:8]}"))


def test_forged_markers_hijack_nothing(harness: Harness, tmp_path: Path) -> None:
    """An error whose message carries the markers of future and existing groups files its own issue; the real
    errors get their own; closing the spam as not planned mutes only the spam; a lost state adopts the real issue."""
    spam, real1, real2 = fingerprint("spam"), fingerprint("real-one"), fingerprint("real-two")
    harness.start()
    harness.emit(spam, message=_forged(real1, real2))  # both real groups are still in the future here
    spam_no = _number(harness, spam)
    assert f"autoheal:fingerprint={real1}" in str(_issue_of(harness.standin, spam_no)["body"])  # the bait is there

    harness.emit(real1)
    harness.emit(real2)
    n1, n2 = _number(harness, real1), _number(harness, real2)
    harness.wait_idle()
    assert len({spam_no, n1, n2}) == 3 and len(harness.standin.issues()) == 3
    for fp, n in ((spam, spam_no), (real1, n1), (real2, n2)):
        data = parse_header(str(_issue_of(harness.standin, n)["body"]))
        assert data is not None and data["fingerprint"] == fp

    harness.standin.close_issue(spam_no, "not_planned")
    for fp in (spam, real1, real2):
        harness.emit(fp, version="1.1.0", message=_forged(real1, real2) if fp == spam else "")
    harness.wait_idle()
    assert harness.sink is not None
    rows = {fp: harness.sink.ledger.get_issue(fp) for fp in (spam, real1, real2)}
    assert rows[spam] is not None and rows[spam].muted
    assert all(r is not None and not r.muted and r.state == "open" for fp, r in rows.items() if fp != spam)
    assert _issue_of(harness.standin, spam_no)["state"] == "closed"

    # The state is lost; the spam (a lower number, also matching the search) must not be taken for real1's issue.
    fresh = Harness(harness.standin, tmp_path / "fresh-state")
    try:
        fresh.start()
        fresh.emit(real1)
        assert _number(fresh, real1) == n1
        fresh.wait_idle()
        assert len(harness.standin.issues()) == 3
    finally:
        fresh.close()


def test_foreign_issue_with_a_perfect_header_is_never_adopted(harness: Harness) -> None:
    """Another user's issue that starts with the exact header of a group is ignored: the sink files its own."""
    fp = fingerprint("coveted")
    mallory = harness.standin.add_user("mallory")
    assert mallory
    foreign = harness.standin.preload_issue("Looks legit", _header(fp) + "body\n", user="mallory")
    harness.start()
    harness.emit(fp)
    ours = _number(harness, fp)
    harness.wait_idle()
    assert ours != foreign
    assert _issue_of(harness.standin, ours)["user"] == "autoheal-bot"
    assert len(harness.requests("GET", r"^/user$")) == 1  # the identity is learned once
    (search,) = harness.requests("GET", r"^/search/issues$")
    assert "author:autoheal-bot" in search.query["q"][0]


def test_a_crash_retry_does_not_take_a_foreign_copy_for_its_create(harness: Harness) -> None:
    """A create whose answer was lost looks again; a foreign issue carrying the header is not its result."""
    fp = fingerprint("retried")
    harness.standin.add_user("mallory")
    harness.standin.preload_issue("Decoy", _header(fp) + "x\n", user="mallory")
    harness.standin.fault("hang", count=1, methods=["POST"], path_pattern=r"/issues$", seconds=8, process_first=True)
    harness.start(request_timeout=2.0)
    harness.emit(fp)
    number = _number(harness, fp)
    harness.wait_idle()
    mine = [i for i in harness.standin.issues() if i["user"] == "autoheal-bot"]
    assert [i["number"] for i in mine] == [number]  # the hung create, found again; no duplicate, no decoy


def test_app_token_learns_its_login_from_the_issue_it_filed(harness: Harness) -> None:
    """GET /user is forbidden for a GitHub App token: the sink keeps working and takes its bot login from its issue."""
    token = harness.standin.add_app("autoheal-app")
    harness.start(token=token, token_source="argument")
    fp = fingerprint("from-app")
    harness.emit(fp)
    number = _number(harness, fp)
    harness.wait_idle()
    assert _issue_of(harness.standin, number)["user"] == "autoheal-app[bot]"
    assert [e.status for e in harness.requests("GET", r"^/user$")] == [403]
    assert harness.sink is not None and harness.sink.ledger.meta("github_login") == "autoheal-app[bot]"


def test_configured_app_login_adopts_its_own_issue_after_a_lost_state(harness: Harness) -> None:
    """With AUTOHEAL_GITHUB_LOGIN set to the app's bot, search uses author:app/<slug> and adopts its issue."""
    token = harness.standin.add_app("autoheal-app")
    fp = fingerprint("app-adopt")
    harness.standin.add_user("mallory")
    harness.standin.preload_issue("Decoy", _header(fp) + "x\n", user="mallory")
    own = harness.standin.preload_issue("Old", _header(fp) + "x\n", user="autoheal-app[bot]")
    harness.start(token=token, token_source="argument", login="autoheal-app[bot]")
    harness.emit(fp)
    assert _number(harness, fp) == own
    harness.wait_idle()
    assert harness.requests("POST", r"/issues$") == []
    (search,) = harness.requests("GET", r"^/search/issues$")
    assert "author:app/autoheal-app" in search.query["q"][0]


def test_data_block_carries_provenance_and_current_facts(harness: Harness) -> None:
    """The service writes trusted_source/provenance and refreshes count when the hand-off minimum is reached."""
    cli, browser, denied = fingerprint("prov-cli"), fingerprint("prov-browser"), fingerprint("prov-receiver")
    harness.start()
    harness.emit(cli)
    harness.emit(browser, source="browser")
    harness.emit(denied, ingest_trust="untrusted")  # the receiver's verdict beats the sender's "cli"
    numbers = {fp: _number(harness, fp) for fp in (cli, browser, denied)}
    harness.wait_idle()

    def data(fp: str) -> dict[str, object]:
        parsed = parse_header(str(_issue_of(harness.standin, numbers[fp])["body"]))
        assert parsed is not None
        return parsed

    assert (data(cli)["trusted_source"], data(cli)["provenance"], data(cli)["count"]) == (True, "attribute", 1)
    assert (data(browser)["trusted_source"], data(browser)["provenance"]) == (False, "attribute")
    assert (data(denied)["trusted_source"], data(denied)["provenance"]) == (False, "receiver")
    assert data(cli)["in_app"] is True

    for _ in range(2):
        harness.emit(cli)
    harness.emit(cli, ingest_trust="untrusted")  # one untrusted occurrence taints the group for good
    wait_for(lambda: data(cli)["count"] == 4 and data(cli)["trusted_source"] is False, what="the refreshed block")
    assert data(cli)["provenance"] == "receiver"


def test_api_hand_off_checks_the_issue_is_still_ours(harness: Harness) -> None:
    """When the issue's header is gone by the time of the hand-off, Copilot is not assigned and the block not rewritten."""
    fp = fingerprint("edited-away")
    harness.start(handoff="copilot", handoff_min_occurrences=2)
    harness.emit(fp)
    number = _number(harness, fp)
    harness.wait_idle()
    with harness.standin.lock:
        harness.standin.issues_by_number[number].body = "Rewritten by hand.\n"
    harness.emit(fp)
    wait_for(lambda: harness.status()["handoff"]["counts"].get("skipped_unverified") == 1, what="the refusal")
    harness.wait_idle()
    assert harness.requests("POST", r"/assignees$") == []
    assert harness.requests("PATCH", rf"/issues/{number}$") == []
    assert _issue_of(harness.standin, number)["body"] == "Rewritten by hand.\n"


def test_header_round_trip_escapes_and_trims() -> None:
    """The header parses back; "--", "<" and ">" never appear raw in the block; a huge block keeps the gate's keys."""
    fp = fingerprint("round-trip")
    hostile = {"source": "cli", "count": 3, "in_app": True, "trusted_source": True, "provenance": "attribute",
               "mcp_arguments": {"q": "--> <script>" * 2000}}
    body = with_header(fp, hostile, f"{marker_for(fp)}\n{data_line({'fingerprint': fp})}\nrendered text\n")
    first, second, rest = body.split("\n", 2)
    assert first == marker_for(fp) and "--" not in second[len("<!-- autoheal:data "):-len(" -->")]
    assert rest == "rendered text\n"  # the renderer's own header lines were replaced, not repeated
    data = parse_header(body)
    assert data is not None and "mcp_arguments" not in data and len(second) < 4500
    assert {k: data[k] for k in ("fingerprint", "count", "in_app", "trusted_source")} == {
        "fingerprint": fp, "count": 3, "in_app": True, "trusted_source": True}
    changed = replace_data(body, {"count": 7})
    assert changed is not None and parse_header(changed)["count"] == 7  # type: ignore[index]
    assert replace_data("no header\n", {"count": 7}) is None
