"""The way to a fix on the page, from the real GitHub sink filing on the GitHub stand-in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polling import wait_for
from tests.github_standin.server import GitHubStandin
from ui_support import Browser, get, get_json, send_error


def test_filed_and_handed_off_groups_link_to_github(github_standin: GitHubStandin,
                                                     autoheal_factory: Callable[..., Any], screenshot_dir: Path,
                                                     tmp_path: Path) -> None:
    """A group filed and handed to Copilot shows "#N · handed to Copilot" linking the issue, and its timeline."""
    env = {**github_standin.env(), "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": "0", "AUTOHEAL_GITHUB_COMMENT_INTERVAL": "0",
           "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL": "0", "AUTOHEAL_GITHUB_HANDOFF": "copilot",
           "AUTOHEAL_GITHUB_HANDOFF_MIN_OCCURRENCES": "3", "AUTOHEAL_GITHUB_ISSUE_POLL_INTERVAL": "1"}
    service = autoheal_factory(env=env)
    endpoint = service.http_endpoint
    web = f"{github_standin.env()['GITHUB_API_URL'].rstrip('/')}/{github_standin.env()['GITHUB_REPOSITORY']}"

    def ways() -> dict[str, Any]:
        return {g["exception_type"]: g["way"] for g in get_json(f"{endpoint}/api/groups")["groups"]}

    send_error(endpoint, service="shop", exc_type="ZeroDivisionError", message="division by zero",
               logs=("dividing 0 by 0",))
    send_error(endpoint, service="shop", exc_type="KeyError", message="'A-17'", frames=("load_order",))
    # The sink records an issue's number once GitHub answered: wait for both groups to show it.
    wait_for(lambda: {w["state"] for w in ways().values()} == {"filed"} and len(ways()) == 2, 90, 0.3, "two filed")
    group_id = next(g["id"] for g in get_json(f"{endpoint}/api/groups?q=ZeroDivisionError")["groups"])
    browser = Browser()
    try:
        browser.call("goto", url=f"{endpoint}/")
        cell = f"tr[data-group='{group_id}'] .way"
        seen = browser.call("text", selector=cell)
        assert "filed on GitHub" in seen
        # Two more occurrences reach the hand-off threshold: the page follows without a reload, also
        # when the hand-off lands after the occurrence that triggered it (only the sink's tables move).
        browser.call("eval", expression="window.__stillSamePage = 7")
        for n in (1, 2):
            send_error(endpoint, service="shop", exc_type="ZeroDivisionError", message="division by zero",
                       logs=(f"dividing {n} by 0",))
        for _ in range(10):
            if "handed to Copilot" in seen:
                break
            seen = browser.call("waitText", selector=cell, different=seen.strip(), timeout=90000)
        assert re.search(r"#\d+ · handed to Copilot", seen), seen
        # Closed as not planned on GitHub: no occurrence, only the sink's tables move, and the page follows.
        other = next(g for g in get_json(f"{endpoint}/api/groups?q=KeyError")["groups"])
        other_cell = f"tr[data-group='{other['id']}'] .way"
        before = browser.call("text", selector=other_cell).strip()
        github_standin.close_issue(other["way"]["github_issue"], "not_planned")
        muted = browser.call("waitText", selector=other_cell, different=before, timeout=90000)
        assert "muted" in muted, muted
        assert browser.call("eval", expression="window.__stillSamePage") == 7
    finally:
        browser.close()
    handed = next(i for i in github_standin.issues() if i["assignees"])
    way = ways()["ZeroDivisionError"]
    assert way["github_issue"] == handed["number"]
    assert way["github_issue_url"] == f"{web}/issues/{handed['number']}"
    only_copilot = get_json(f"{endpoint}/api/groups?state=copilot")
    assert [g["exception_type"] for g in only_copilot["groups"]] == ["ZeroDivisionError"]
    group_id = next(g["id"] for g in only_copilot["groups"])

    def timeline() -> list[str]:
        return [e["what"] for e in get_json(f"{endpoint}/api/groups/{group_id}")["timeline"]]

    # The outbox marks the hand-off done just after the issue map records it.
    wait_for(lambda: any(t.startswith("Copilot hand-off: done") for t in timeline()), 60, 0.3, "the hand-off done")
    assert f"filed as GitHub issue #{handed['number']}" in timeline()
    status, _, html = get(f"{endpoint}/status")
    assert status == 200 and github_standin.env()["GITHUB_REPOSITORY"].encode() in html

    browser = Browser()
    try:
        browser.call("goto", url=f"{endpoint}/")
        link = browser.call("attr", selector=f"tr[data-group='{group_id}'] .way a", name="href")
        assert link == f"{web}/issues/{handed['number']}"
        assert re.search(r"#\d+ · handed to Copilot", browser.call("text", selector=f"tr[data-group='{group_id}'] .way"))
        browser.call("screenshot", path=str(tmp_path / "list-github.png"))
        browser.call("goto", url=f"{endpoint}/groups/{group_id}")
        assert "Copilot hand-off" in browser.call("text", selector="ol.timeline")
        browser.call("screenshot", path=str(tmp_path / "group-github.png"), fullPage=True)
        assert browser.call("events") == {"dialogs": [], "consoleErrors": [], "pageErrors": []}
    finally:
        browser.close()
    for name in ("list-github.png", "group-github.png"):
        shutil.copy(tmp_path / name, screenshot_dir / name)
