"""The service's one GitHub REST client (PyGithub), and what its failures mean.

Used by the sink and by ``otel-autoheal init`` (labels, the token's login); only the
repository gate (``onboarding/templates/gate.py``) has its own stdlib client, as it runs in Actions.

PyGithub's own retries are off (``retry=None``): it retries POSTs, which duplicates issues when a
create times out after reaching GitHub. Its request spacing is off too; ``budget`` paces writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from github import Auth, Github, GithubException
from otel_autoheal.sinks.github.config import COPILOT_LOGIN, GitHubConfig
from otel_autoheal.sinks.github.markers import parse_header

__all__ = ["COPILOT_LOGINS", "Failure", "GitHubClient", "classify", "is_ours"]

#: How Copilot shows up as an assignee (REST login, GraphQL login, display login).
COPILOT_LOGINS = frozenset({COPILOT_LOGIN, "copilot-swe-agent", "Copilot"})
_USER_AGENT = "otel-autoheal"
#: Pages of 100 labels read at most when listing a repository's labels.
_MAX_LABEL_PAGES = 20


def _login_of(item: Any) -> str:
    return str((item.get("user") or {}).get("login") or "")


def is_ours(issue: Any, fingerprint: str, login: str) -> bool:
    """True when ``issue`` is the sink's issue for ``fingerprint``: authored by ``login`` (the token's
    own identity) with an intact header naming ``fingerprint``. Foreign or fenced copies never are."""
    if "pull_request" in issue or not login or _login_of(issue).lower() != login.lower():
        return False
    data = parse_header(issue.get("body"))
    return data is not None and data.get("fingerprint") == fingerprint


@dataclass(frozen=True)
class Failure:
    """What a failed request means for the work item.

    kind: ``transient`` (retry with backoff), ``rate_limited`` (wait until ``retry_at``),
    ``config`` (a setting is wrong; stop writing until fixed), ``rejected`` (this item can never
    succeed: mark it failed), ``not_found`` (the issue is gone), ``forbidden`` (the token may not
    do this one thing).
    """

    kind: str
    message: str
    status: int | None = None
    retry_at: float | None = None


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for k, v in dict(headers).items():
        if k.lower() == name:
            return str(v)
    return None


def _message(data: Any) -> str:
    if isinstance(data, dict):
        msg = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = []
            for e in errors[:3]:
                if isinstance(e, dict):
                    details.append(str(e.get("message") or f"{e.get('field')} {e.get('code')}"))
                else:
                    details.append(str(e))
            msg = f"{msg}: {'; '.join(details)}" if msg else "; ".join(details)
        return msg[:500]
    return str(data)[:500]


def classify(exc: BaseException, now: float | None = None) -> Failure:
    """Turn an exception from a GitHub call into a ``Failure``. Never includes the token."""
    now = time.time() if now is None else now
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure("transient", "GitHub did not answer in time (timeout)")
    if isinstance(exc, requests.exceptions.RequestException):
        return Failure("transient", f"cannot reach GitHub: {type(exc).__name__}")
    if not isinstance(exc, GithubException):
        return Failure("transient", f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}")
    status, msg = exc.status, _message(exc.data)
    retry_after = _header(exc.headers, "retry-after")
    remaining = _header(exc.headers, "x-ratelimit-remaining")
    reset = _header(exc.headers, "x-ratelimit-reset")
    if status in (403, 429):
        if retry_after and retry_after.strip().isdigit():
            return Failure("rate_limited", f"{status} rate limited: retry after {retry_after}s", status,
                           now + int(retry_after))
        if remaining == "0" and reset and reset.strip().isdigit():
            return Failure("rate_limited", f"{status} primary rate limit exhausted until reset", status,
                           float(reset) + 1)
        low = msg.lower()
        if status == 429 or "rate limit" in low or "abuse" in low:
            # GitHub: without retry-after, wait at least a minute.
            return Failure("rate_limited", f"{status} secondary rate limit: {msg}", status, now + 60)
        return Failure("forbidden", f"403 forbidden: {msg}", status)
    if status == 401:
        return Failure("config", "401 Bad credentials: the token (GITHUB_TOKEN/GH_TOKEN) is invalid or expired", 401)
    if status == 404:
        return Failure("not_found", f"404 not found: {msg}", 404)
    if status == 410:
        return Failure("rejected", f"410 gone: {msg} (issues disabled or issue deleted)", 410)
    if status == 422:
        return Failure("rejected", f"422 rejected by GitHub: {msg}", 422)
    if status >= 500 or status in (408, 409):
        return Failure("transient", f"GitHub error {status}: {msg}", status)
    return Failure("rejected", f"GitHub answered {status}: {msg}", status)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubClient:
    """One PyGithub connection to one repository; used from one thread at a time."""

    def __init__(
        self, *, api_url: str, repository: str, token: str, timeout: float, user_agent: str = _USER_AGENT
    ) -> None:
        self.repository = repository
        self.gh = Github(
            auth=Auth.Token(token),
            base_url=api_url,
            timeout=max(1, math.ceil(timeout)),  # PyGithub insists on an int
            user_agent=user_agent,
            per_page=100,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        self._path = f"/repos/{repository}"

    @classmethod
    def from_config(cls, config: GitHubConfig) -> GitHubClient:
        """The sink's client: repository, token, API URL and timeout from its settings."""
        return cls(api_url=config.api_url, repository=config.repository, token=config.token,
                   timeout=config.request_timeout)

    def close(self) -> None:
        try:
            self.gh.close()
        except Exception:  # closing a pool must never fail shutdown
            pass

    def _json(self, verb: str, path: str, *, parameters: dict[str, Any] | None = None, body: Any = None) -> Any:
        _, data = self.gh.requester.requestJsonAndCheck(verb, path, parameters=parameters, input=body)
        return data

    # --------------------------------------------------------------- reads

    def check_repository(self) -> dict[str, Any]:
        data = self._json("GET", self._path)
        return {"full_name": data.get("full_name"), "default_branch": data.get("default_branch")}

    def get_issue(self, number: int) -> dict[str, Any]:
        data = self._json("GET", f"{self._path}/issues/{number}")
        return dict(data)

    def authenticated_login(self) -> str | None:
        """The token's own login (``GET /user``), or None when the token may not read it.

        GitHub App installation tokens get 403 "Resource not accessible by integration"; the
        caller then falls back to the author of an issue it filed itself.
        """
        try:
            data = self._json("GET", "/user")
        except GithubException as exc:
            if exc.status in (403, 404):
                return None
            raise
        return str(data.get("login") or "") or None

    def find_issue_by_marker(
        self, fingerprint: str, since: float | None, login: str, before_search: Callable[[], None] = lambda: None
    ) -> int | None:
        """The issue ``login`` filed for ``fingerprint`` (see ``is_ours``), or None.

        With ``since`` (a create that may have reached GitHub), issues updated since then are
        listed first: listing has no index lag. Issue search (quoted fingerprint,
        ``is:issue repo:o/r author:…``) then covers older issues, e.g. after the local state was
        lost. Every hit is confirmed by its author and the header at the top of its body:
        search matches words anywhere, including an attacker's copy of our marker.
        """
        if since is not None:
            params = {"state": "all", "since": _iso(since - 120), "sort": "created", "direction": "desc",
                      "per_page": 100}
            for page in range(1, 4):
                items = self._json("GET", f"{self._path}/issues", parameters={**params, "page": page})
                for it in items:
                    if is_ours(it, fingerprint, login):
                        return int(it["number"])
                if len(items) < 100:
                    break
        # Search names a GitHub App's bot "<slug>[bot]" as author:app/<slug>.
        author = f"app/{login[:-5]}" if login.endswith("[bot]") else login
        q = f'"{fingerprint}" is:issue repo:{self.repository} author:{author}'
        before_search()
        data = self._json("GET", "/search/issues", parameters={"q": q, "advanced_search": "true", "per_page": 30})
        for it in data.get("items", []):
            if is_ours(it, fingerprint, login):
                return int(it["number"])
        return None

    def comment_exists(self, number: int, token: str, since: float, login: str | None) -> bool:
        """Whether a comment starting with ``token`` exists, by ``login`` when the identity is known."""
        items = self._json(
            "GET", f"{self._path}/issues/{number}/comments", parameters={"since": _iso(since - 120), "per_page": 100}
        )
        return any(
            (c.get("body") or "").startswith(token) and (login is None or _login_of(c).lower() == login.lower())
            for c in items
        )

    def label_names(self) -> set[str]:
        """Names of the repository's labels, lower-cased (GitHub compares them case-insensitively)."""
        names: set[str] = set()
        for page in range(1, _MAX_LABEL_PAGES + 1):
            items = self._json("GET", f"{self._path}/labels", parameters={"per_page": 100, "page": page})
            names.update(str(lab.get("name", "")).lower() for lab in items if isinstance(lab, dict))
            if len(items) < 100:
                break
        return names

    def label_exists(self, name: str) -> bool:
        try:
            self._json("GET", f"{self._path}/labels/{quote(name, safe='')}")
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def timeline(self, number: int, max_pages: int = 5) -> list[dict[str, Any]]:
        """The issue's timeline events, oldest first (at most ``max_pages`` pages of 100)."""
        out: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            items = self._json(
                "GET", f"{self._path}/issues/{number}/timeline", parameters={"per_page": 100, "page": page}
            )
            out += [dict(it) for it in items]
            if len(items) < 100:
                break
        return out

    def get_pull(self, number: int) -> dict[str, Any]:
        return dict(self._json("GET", f"{self._path}/pulls/{number}"))

    def issues_updated_since(self, since: str, page: int) -> list[dict[str, Any]]:
        """One page of the repository's issues (and PRs) updated at or after ``since``, oldest first."""
        params = {"state": "all", "since": since, "sort": "updated", "direction": "asc", "per_page": 100,
                  "page": page}
        return [dict(it) for it in self._json("GET", f"{self._path}/issues", parameters=params)]

    def open_pr_references(self, number: int) -> list[int]:
        """Open pull requests that cross-reference the issue (e.g. "Fixes #N", Copilot's draft PR)."""
        out = []
        for ev in self.timeline(number):
            src = (ev.get("source") or {}).get("issue") or {}
            if ev.get("event") == "cross-referenced" and src.get("pull_request") and src.get("state") == "open":
                out.append(int(src["number"]))
        return out

    # --------------------------------------------------------------- writes

    def create_label(self, name: str, color: str, description: str) -> bool:
        """Create the label; False when it exists already."""
        try:
            self._json("POST", f"{self._path}/labels", body={"name": name, "color": color, "description": description})
        except GithubException as exc:
            errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
            if exc.status == 422 and errors and any(e.get("code") == "already_exists" for e in errors):
                return False
            raise
        return True

    def create_issue(self, title: str, body: str, labels: list[str]) -> tuple[int, str]:
        """File an issue; returns its number and its author's login (the token's identity)."""
        data = self._json("POST", f"{self._path}/issues", body={"title": title, "body": body, "labels": labels})
        return int(data["number"]), _login_of(data)

    def update_body(self, number: int, body: str) -> None:
        self._json("PATCH", f"{self._path}/issues/{number}", body={"body": body})

    def comment(self, number: int, body: str) -> None:
        self._json("POST", f"{self._path}/issues/{number}/comments", body={"body": body})

    def reopen(self, number: int) -> None:
        self._json("PATCH", f"{self._path}/issues/{number}", body={"state": "open", "state_reason": "reopened"})

    def assign_copilot(self, number: int, agent_assignment: dict[str, str]) -> list[str]:
        """Add Copilot as assignee with ``agent_assignment``; returns the assignee logins after it."""
        data = self._json(
            "POST",
            f"{self._path}/issues/{number}/assignees",
            body={"assignees": [COPILOT_LOGIN], "agent_assignment": agent_assignment},
        )
        return [str(a.get("login")) for a in (data.get("assignees") or [])]

