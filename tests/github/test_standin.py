"""The stand-in itself: spec validation catches bad traffic and GitHub's limits are enforced."""

from __future__ import annotations

import requests

from github import Auth, Github
from tests.github_standin.openapi import OpenAPIDescription
from tests.github_standin.server import GitHubStandin


def _session(standin: GitHubStandin) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {standin.token}"
    return s


def test_invalid_request_and_response_are_recorded(github_openapi: OpenAPIDescription) -> None:
    """A body outside the description and a malformed issue object are both flagged."""
    with GitHubStandin(spec=github_openapi) as standin:
        s = _session(standin)
        base = f"{standin.api_url}/repos/{standin.repository}"
        assert s.post(f"{base}/issues", json={"title": "ok", "labels": "not-a-list"}, timeout=10).status_code == 201
        s.get(f"{standin.api_url}/repos/{standin.repository}/no/such/thing", timeout=10)
        problems = "\n".join(standin.validation_errors)
        assert "request body labels" in problems
        assert "no such operation" in problems
        good = standin.issue_obj(standin.issues_by_number[1])
    op = github_openapi.operation("GET", "/repos/o/r/issues/1")
    assert op is not None and op.template == "/repos/{owner}/{repo}/issues/{issue_number}"
    assert github_openapi.validate_response(op, 200, good) == []
    wrong_type = github_openapi.validate_response(op, 200, {**good, "number": "one"})
    assert any(e.startswith("response number:") for e in wrong_type)
    missing = github_openapi.validate_response(op, 200, {k: v for k, v in good.items() if k != "user"})
    assert any("'user' is a required property" in e for e in missing)


def test_pygithub_traffic_validates(github_openapi: OpenAPIDescription) -> None:
    """PyGithub's own calls for the endpoints we use pass validation both ways."""
    with GitHubStandin(spec=github_openapi) as standin:
        gh = Github(auth=Auth.Token(standin.token), base_url=standin.api_url, retry=None, lazy=True)
        repo = gh.get_repo(standin.repository)
        issue = repo.create_issue(title="t", body="b <!-- autoheal:fingerprint=ff00 -->", labels=["autoheal"])
        issue.create_comment("c")
        issue.edit(state="closed", state_reason="not_planned")
        assert [i.number for i in gh.search_issues('"ff00" is:issue repo:' + standin.repository)] == [issue.number]
        assert [c.body for c in repo.get_issue(issue.number).get_comments()] == ["c"]
        assert gh.get_rate_limit().resources.core.limit == 5000
        assert standin.validation_errors == []


def test_secondary_limit_is_enforced(github_openapi: OpenAPIDescription) -> None:
    """More content-creating requests per minute than allowed get GitHub's 403 with retry-after."""
    with GitHubStandin(spec=github_openapi, writes_per_minute=5) as standin:
        s = _session(standin)
        url = f"{standin.api_url}/repos/{standin.repository}/issues"
        answers = [s.post(url, json={"title": f"n{i}"}, timeout=10) for i in range(6)]
        assert [a.status_code for a in answers] == [201] * 5 + [403]
        assert answers[-1].headers["retry-after"] == "60"
        assert "secondary rate limit" in answers[-1].json()["message"]
        assert standin.secondary_limit_violations == 1


def test_search_index_lag_and_log_endpoint(github_openapi: OpenAPIDescription) -> None:
    """A new issue is missing from search during the configured lag; /_standin/log lists the traffic."""
    with GitHubStandin(spec=github_openapi, search_lag=3600) as standin:
        s = _session(standin)
        s.post(f"{standin.api_url}/repos/{standin.repository}/issues", json={"title": "t", "body": "abc123"}, timeout=10)
        r = s.get(f"{standin.api_url}/search/issues", params={"q": f'"abc123" is:issue repo:{standin.repository}'},
                  timeout=10)
        assert r.json()["total_count"] == 0
        log = requests.get(f"{standin.api_url}/_standin/log", timeout=10).json()
        assert [(e["method"], e["status"]) for e in log] == [("POST", 201), ("GET", 200)]
        assert standin.token not in str(log)
