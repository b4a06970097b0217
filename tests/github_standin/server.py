"""A stand-in for the GitHub REST API, good enough for PyGithub and honest about GitHub's limits.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, free port) holding one
repository in memory. Every request and response is checked against GitHub's OpenAPI
description (``openapi.py``); problems are collected in ``validation_errors`` for the test to
assert on. It enforces GitHub's secondary limit on content-creating requests (80/minute,
500/hour) so tests can prove the client stays below it, and faults can be switched on at
runtime: 5xx for N requests or for a period, hangs, 403 secondary limit, 429, primary limit.

In-process API: ``GitHubStandin(...).start()``, ``.api_url``, ``.log()``, ``.issues()``,
``.fault(...)``, ``.close_issue(...)``, ``.open_pull_request(...)``, ``.merge_pull_request(...)``
(closes the issues its body says it fixes, with the timeline events GitHub writes),
``.add_user(login)`` / ``.add_app(slug)`` (more identities, each with its own token; the token
decides who authors issues, comments and events, as on GitHub; ``GET /user`` answers an app's
installation token with 403 "Resource not accessible by integration", as GitHub does); over HTTP:
``GET /_standin/log`` and ``GET /_standin/state``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .openapi import OpenAPIDescription, load_description

__all__ = ["COPILOT_LOGIN", "Fault", "GitHubStandin", "LogEntry"]

COPILOT_LOGIN = "copilot-swe-agent[bot]"
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
_DOCS = "https://docs.github.com/rest"
#: GitHub's closing keywords ("Fixes #12") in a PR body.
_CLOSING = re.compile(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)\b")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass
class LogEntry:
    """One request as the stand-in saw it (the Authorization header is never kept)."""

    seq: int
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    start: float
    time: float
    body: Any
    fault: str | None
    content_creating: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Fault:
    """A fault applied to matching requests while ``count`` lasts (None = unlimited) and before ``until``."""

    kind: str  # status | hang | secondary | too_many | primary | forbidden
    count: int | None = None
    until: float | None = None
    methods: frozenset[str] | None = None
    path_pattern: str | None = None
    status: int = 502
    retry_after: int | None = None
    reset_in: float = 60.0
    seconds: float = 30.0
    process_first: bool = False

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.count is not None and self.count <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None


@dataclass
class _Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    labels: list[str]
    assignees: list[str]
    created_at: float
    updated_at: float
    state: str = "open"
    state_reason: str | None = None
    closed_at: float | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    agent_assignments: list[dict[str, Any]] = field(default_factory=list)
    is_pull: bool = False
    indexed_at: float = 0.0
    merged_at: float | None = None
    merge_commit_sha: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    standin: GitHubStandin


class GitHubStandin:
    """The stand-in: one repository ``owner/name`` reachable with ``token``."""

    def __init__(
        self,
        repository: str = "autoheal-test/app",
        token: str = "ghp_standinTOKEN0000000000000000000000",
        *,
        search_lag: float = 0.0,
        validate: bool = True,
        spec: OpenAPIDescription | None = None,
        writes_per_minute: int = 80,
        writes_per_hour: int = 500,
        login: str = "autoheal-bot",
    ) -> None:
        self.owner, self.name = repository.split("/", 1)
        self.repository = repository
        self.token = token
        self.login = login
        #: token -> login of every identity that may call the API; the token names the actor.
        self.users: dict[str, str] = {token: login}
        #: tokens of GitHub App installations: ``GET /user`` is forbidden for them.
        self.app_tokens: set[str] = set()
        self._actor = login
        #: the repository's issue events (``labeled``, ``assigned``), oldest first.
        self.issue_events: list[dict[str, Any]] = []
        self.search_lag = search_lag
        self.writes_per_minute = writes_per_minute
        self.writes_per_hour = writes_per_hour
        self.spec = (spec or load_description()) if validate else None
        self.lock = threading.RLock()
        self.issues_by_number: dict[int, _Issue] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.entries: list[LogEntry] = []
        self.validation_errors: list[str] = []
        self.secondary_limit_violations = 0
        self.search_limit_violations = 0
        self.in_flight = 0
        self.in_flight_requests: list[tuple[str, str]] = []
        self.searches_per_minute = 30
        self._searches: list[float] = []
        self.copilot_assignable = True
        self.copilot_forbidden = False
        self.assignable_users = {self.owner, login}
        self._accepted_writes: list[float] = []
        self._next_id = 1000
        self._next_number = 1
        self._stop = threading.Event()
        self._created = time.time()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> GitHubStandin:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="github-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitHubStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "stand-in not started"
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The GITHUB_* environment that points a client at this stand-in."""
        return {"GITHUB_API_URL": self.api_url, "GITHUB_REPOSITORY": self.repository, "GITHUB_TOKEN": self.token}

    # ---------------------------------------------------------------- test API

    def fault(self, kind: str, **kwargs: Any) -> Fault:
        """Switch a fault on; see ``Fault``. ``seconds_from_now`` sets ``until`` relative to now."""
        span = kwargs.pop("for_seconds", None)
        methods = kwargs.pop("methods", None)
        f = Fault(kind=kind, methods=frozenset(methods) if methods else None, **kwargs)
        if span is not None:
            f.until = time.time() + span
        with self.lock:
            self.faults.append(f)
        return f

    def add_user(self, login: str) -> str:
        """Another user of the repository (e.g. an outsider filing issues); returns their token."""
        token = "ghp_" + hashlib.sha1(f"user:{login}".encode()).hexdigest()[:36]
        with self.lock:
            self.users[token] = login
        return token

    def add_app(self, slug: str) -> str:
        """A GitHub App installation acting as ``<slug>[bot]``; returns its installation token."""
        token = "ghs_" + hashlib.sha1(f"app:{slug}".encode()).hexdigest()[:36]
        with self.lock:
            self.users[token] = f"{slug}[bot]"
            self.app_tokens.add(token)
        return token

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def outage(self, seconds: float | None = None, status: int = 502) -> Fault:
        """Every request answers ``status`` until ``end_outage`` or for ``seconds``."""
        return self.fault("status", status=status, for_seconds=seconds)

    def end_outage(self) -> None:
        self.clear_faults()

    def log(self) -> list[LogEntry]:
        with self.lock:
            return list(self.entries)

    def writes(self) -> list[LogEntry]:
        """Content-creating requests that GitHub accepted (2xx)."""
        return [e for e in self.log() if e.content_creating and 200 <= e.status < 300]

    def max_writes_in_window(self, window: float = 60.0) -> int:
        times = sorted(e.start for e in self.writes())
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - window:
                j += 1
            best = max(best, i - j + 1)
        return best

    def issues(self) -> list[dict[str, Any]]:
        """Every issue (not PRs) as a dict: number, title, body, state, state_reason, labels, assignees, comments."""
        with self.lock:
            return [
                {
                    "number": i.number,
                    "user": i.user,
                    "title": i.title,
                    "body": i.body,
                    "state": i.state,
                    "state_reason": i.state_reason,
                    "labels": list(i.labels),
                    "assignees": list(i.assignees),
                    "comments": [c["body"] for c in i.comments],
                    "comment_authors": [c["user"] for c in i.comments],
                    "agent_assignments": list(i.agent_assignments),
                }
                for i in sorted(self.issues_by_number.values(), key=lambda x: x.number)
                if not i.is_pull
            ]

    def close_issue(self, number: int, reason: str = "completed") -> None:
        """Close an issue as a maintainer would in the web UI (not logged, not rate limited)."""
        with self.lock:
            self._close(self.issues_by_number[number], reason, time.time(), self.owner, None)

    def _close(self, issue: _Issue, reason: str, now: float, actor: str, commit_id: str | None) -> None:
        issue.state, issue.state_reason, issue.closed_at, issue.updated_at = "closed", reason, now, now
        issue.timeline.append({"event": "closed", "created_at": now, "actor": actor, "commit_id": commit_id,
                               "state_reason": reason, "id": self._new_id()})

    def merge_pull_request(self, number: int) -> str:
        """Merge a PR as a maintainer would: it closes (as completed) every open issue its body says it
        fixes, with a ``closed`` timeline event carrying the merge commit. Returns the merge commit SHA."""
        with self.lock:
            pr = self.issues_by_number[number]
            assert pr.is_pull and pr.merged_at is None, f"#{number} is not an open pull request"
            now = time.time()
            sha = hashlib.sha1(f"{self.repository}#{number}@{now}".encode()).hexdigest()
            pr.state, pr.closed_at, pr.updated_at, pr.merged_at, pr.merge_commit_sha = "closed", now, now, now, sha
            for ref in _CLOSING.findall(pr.body or ""):
                issue = self.issues_by_number.get(int(ref))
                if issue is not None and not issue.is_pull and issue.state == "open":
                    self._close(issue, "completed", now, self.owner, sha)
            return sha

    def open_pull_request(self, issue_number: int, title: str = "Fix the bug") -> int:
        """Open a PR whose body says "Fixes #N": it shows in the issue's timeline as a cross-reference."""
        with self.lock:
            now = time.time()
            pr = self._new_issue(title, f"Fixes #{issue_number}", self.login, [], now)
            pr.is_pull = True
            self.issues_by_number[issue_number].timeline.append(
                {"event": "cross-referenced", "created_at": now, "source_number": pr.number}
            )
            return pr.number

    def preload_issue(
        self, title: str, body: str, labels: tuple[str, ...] = ("autoheal",), user: str | None = None
    ) -> int:
        """An issue that exists before the test (filed by an earlier instance, or by ``user``); searchable at once."""
        with self.lock:
            for n in labels:
                self._ensure_label(n)
            issue = self._new_issue(title, body, user or self.login, list(labels), time.time() - 86400)
            issue.indexed_at = 0.0
            return issue.number

    def set_pull_state(self, number: int, state: str) -> None:
        with self.lock:
            self.issues_by_number[number].state = state

    # ---------------------------------------------------------------- objects

    def _event(self, issue: _Issue, kind: str, now: float, *, label: str = "", assignee: str = "") -> None:
        self.issue_events.append({"id": self._new_id(), "number": issue.number, "event": kind, "actor": self._actor,
                                  "created_at": now, "label": label, "assignee": assignee})

    def backdate_events(self, seconds: float) -> None:
        """Move every issue event ``seconds`` into the past (e.g. yesterday's Copilot assignments)."""
        with self.lock:
            for ev in self.issue_events:
                ev["created_at"] -= seconds

    def _issue_event_obj(self, ev: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": ev["id"],
            "node_id": f"IE_{ev['id']}",
            "url": f"{self._base()}/issues/events/{ev['id']}",
            "actor": self.user_obj(ev["actor"]),
            "event": ev["event"],
            "commit_id": None,
            "commit_url": None,
            "created_at": _iso(ev["created_at"]),
            "performed_via_github_app": None,
        }
        if ev["label"]:
            obj["label"] = {"name": ev["label"], "color": self.labels[ev["label"].lower()]["color"]}
        if ev["assignee"]:
            obj["assignee"] = self.user_obj(ev["assignee"])
            obj["assigner"] = self.user_obj(ev["actor"])
        return obj

    def authenticated_user_obj(self, login: str) -> dict[str, Any]:
        """``GET /user`` for a user token: the public profile fields GitHub always returns."""
        ts = _iso(self._created)
        return {**self.user_obj(login), "name": None, "company": None, "blog": "", "location": None, "email": None,
                "hireable": None, "bio": None, "public_repos": 1, "public_gists": 0, "followers": 0,
                "following": 0, "created_at": ts, "updated_at": ts}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _new_issue(self, title: str, body: str | None, user: str, labels: list[str], now: float) -> _Issue:
        issue = _Issue(
            number=self._next_number,
            id=self._new_id(),
            title=title,
            body=body,
            user=user,
            labels=labels,
            assignees=[],
            created_at=now,
            updated_at=now,
            indexed_at=now + self.search_lag,
        )
        self._next_number += 1
        self.issues_by_number[issue.number] = issue
        return issue

    def _base(self) -> str:
        return f"{self.api_url}/repos/{self.repository}"

    def user_obj(self, login: str) -> dict[str, Any]:
        is_bot = login.endswith("[bot]") or login == "Copilot"
        uid = 198982749 if login == "Copilot" else 5000 + sum(map(ord, login))
        url = f"{self.api_url}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}",
            "avatar_url": f"https://avatars.example.com/u/{uid}",
            "gravatar_id": "",
            "url": url,
            "html_url": f"https://github.example.com/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": "Bot" if is_bot else "User",
            "site_admin": False,
            "user_view_type": "public",
        }

    def label_obj(self, name: str) -> dict[str, Any]:
        lab = self.labels[name.lower()]
        return {
            "id": lab["id"],
            "node_id": f"LA_{lab['id']}",
            "url": f"{self._base()}/labels/{lab['name']}",
            "name": lab["name"],
            "description": lab["description"],
            "color": lab["color"],
            "default": False,
        }

    def _ensure_label(self, name: str) -> None:
        if name.lower() not in self.labels:
            self.labels[name.lower()] = {"id": self._new_id(), "name": name, "color": "ededed", "description": None}

    def issue_obj(self, issue: _Issue, search: bool = False) -> dict[str, Any]:
        url = f"{self._base()}/issues/{issue.number}"
        obj: dict[str, Any] = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "url": url,
            "repository_url": self._base(),
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"https://github.example.com/{self.repository}/{'pull' if issue.is_pull else 'issues'}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user_obj(issue.user),
            "labels": [self.label_obj(n) for n in issue.labels],
            "assignee": self.user_obj(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user_obj(a) for a in issue.assignees],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(issue.comments),
            "closed_at": _iso(issue.closed_at) if issue.closed_at else None,
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at),
            "author_association": "OWNER",
            "reactions": {
                "url": f"{url}/reactions",
                "total_count": 0,
                "+1": 0,
                "-1": 0,
                "laugh": 0,
                "confused": 0,
                "heart": 0,
                "hooray": 0,
                "eyes": 0,
                "rocket": 0,
            },
        }
        if issue.is_pull:
            pr_url = f"{self._base()}/pulls/{issue.number}"
            obj["pull_request"] = {
                "url": pr_url,
                "html_url": obj["html_url"],
                "diff_url": obj["html_url"] + ".diff",
                "patch_url": obj["html_url"] + ".patch",
                "merged_at": _iso(issue.merged_at) if issue.merged_at else None,
            }
        if search:
            obj["score"] = 1.0
        return obj

    def comment_obj(self, issue: _Issue, c: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base()}/issues/comments/{c['id']}"
        return {
            "id": c["id"],
            "node_id": f"IC_{c['id']}",
            "url": url,
            "html_url": f"https://github.example.com/{self.repository}/issues/{issue.number}#issuecomment-{c['id']}",
            "body": c["body"],
            "user": self.user_obj(c["user"]),
            "created_at": _iso(c["created_at"]),
            "updated_at": _iso(c["created_at"]),
            "issue_url": f"{self._base()}/issues/{issue.number}",
            "author_association": "OWNER",
        }

    def repo_obj(self) -> dict[str, Any]:
        b = self._base()
        gh = f"https://github.example.com/{self.repository}"
        ts = _iso(self._created)
        return {
            "id": 424242,
            "node_id": "R_424242",
            "name": self.name,
            "full_name": self.repository,
            "owner": self.user_obj(self.owner),
            "private": True,
            "html_url": gh,
            "description": "stand-in repository",
            "fork": False,
            "url": b,
            "archive_url": b + "/{archive_format}{/ref}",
            "assignees_url": b + "/assignees{/user}",
            "blobs_url": b + "/git/blobs{/sha}",
            "branches_url": b + "/branches{/branch}",
            "collaborators_url": b + "/collaborators{/collaborator}",
            "comments_url": b + "/comments{/number}",
            "commits_url": b + "/commits{/sha}",
            "compare_url": b + "/compare/{base}...{head}",
            "contents_url": b + "/contents/{+path}",
            "contributors_url": b + "/contributors",
            "deployments_url": b + "/deployments",
            "downloads_url": b + "/downloads",
            "events_url": b + "/events",
            "forks_url": b + "/forks",
            "git_commits_url": b + "/git/commits{/sha}",
            "git_refs_url": b + "/git/refs{/sha}",
            "git_tags_url": b + "/git/tags{/sha}",
            "git_url": f"git://github.example.com/{self.repository}.git",
            "hooks_url": b + "/hooks",
            "issue_comment_url": b + "/issues/comments{/number}",
            "issue_events_url": b + "/issues/events{/number}",
            "issues_url": b + "/issues{/number}",
            "keys_url": b + "/keys{/key_id}",
            "labels_url": b + "/labels{/name}",
            "languages_url": b + "/languages",
            "merges_url": b + "/merges",
            "milestones_url": b + "/milestones{/number}",
            "notifications_url": b + "/notifications{?since,all,participating}",
            "pulls_url": b + "/pulls{/number}",
            "releases_url": b + "/releases{/id}",
            "ssh_url": f"git@github.example.com:{self.repository}.git",
            "stargazers_url": b + "/stargazers",
            "statuses_url": b + "/statuses/{sha}",
            "subscribers_url": b + "/subscribers",
            "subscription_url": b + "/subscription",
            "tags_url": b + "/tags",
            "teams_url": b + "/teams",
            "trees_url": b + "/git/trees{/sha}",
            "clone_url": gh + ".git",
            "mirror_url": None,
            "svn_url": gh,
            "homepage": None,
            "language": "Python",
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 1,
            "default_branch": "main",
            "open_issues": sum(1 for i in self.issues_by_number.values() if i.state == "open"),
            "open_issues_count": sum(1 for i in self.issues_by_number.values() if i.state == "open"),
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "license": None,
            "pushed_at": ts,
            "created_at": ts,
            "updated_at": ts,
            "network_count": 0,
            "subscribers_count": 1,
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
        }

    # ---------------------------------------------------------------- request handling

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        start = time.time()
        if path.startswith("/_standin/"):
            return self._control(path)
        with self.lock:
            self.in_flight += 1
            self.in_flight_requests.append((method, path))
        try:
            return self._handle(method, path, query, headers, raw_body, start)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.in_flight_requests.remove((method, path))

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw_body: bytes,
        start: float,
    ) -> tuple[int, dict[str, str], Any]:
        body: Any = None
        has_body = bool(raw_body)
        body_error = None
        if has_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body_error = "request body is not JSON"
        content_creating = method in _WRITE_METHODS
        fault_name = None
        status: int = 500
        rheaders: dict[str, str] = {}
        payload: Any = None
        process_then_hang: Fault | None = None
        with self.lock:
            fault = next((f for f in self.faults if f.matches(method, path, start)), None)
            if fault is not None and fault.count is not None:
                fault.count -= 1
        if fault is not None and fault.kind == "hang" and fault.process_first:
            process_then_hang, fault = fault, None
        op = self.spec.operation(method, path) if self.spec is not None else None
        problems: list[str] = []
        if self.spec is not None:
            if op is None:
                problems.append(f"{method} {path}: no such operation in the OpenAPI description")
            else:
                if body_error:
                    problems.append(body_error)
                problems += self.spec.validate_request(op, query, body, has_body)
        if fault is not None:
            fault_name = fault.kind
            if fault.kind == "hang":
                self._stop.wait(fault.seconds)
            status, rheaders, payload = self._fault_response(fault, start)
        else:
            auth = headers.get("authorization", "")
            token = auth.split(" ", 1)[1] if " " in auth else ""
            if token not in self.users:
                status, payload = 401, {"message": "Bad credentials", "documentation_url": _DOCS, "status": "401"}
                fault_name = "auth"
            elif path == "/search/issues" and not self._admit_search(start):
                self.search_limit_violations += 1
                fault_name = "search-limit-enforced"
                status, rheaders = 403, {"x-ratelimit-remaining": "0", "x-ratelimit-resource": "search",
                                         "x-ratelimit-reset": str(int(start) + 60)}
                payload = {"message": "API rate limit exceeded for search.", "documentation_url": _DOCS}
            elif content_creating and not self._admit_write(start):
                self.secondary_limit_violations += 1
                fault_name = "secondary-enforced"
                status, rheaders = 403, {"retry-after": "60"}
                payload = {"message": _SECONDARY_MESSAGE, "documentation_url": _DOCS}
            else:
                with self.lock:
                    self._actor = self.users[token]
                    status, rheaders, payload = self._route(method, path, query, body, token)
                if fault_name is None and status == 403 and "copilot" in json.dumps(payload).lower():
                    fault_name = "copilot-forbidden"
        if process_then_hang is not None:
            fault_name = "hang-after-processing"
            self._stop.wait(process_then_hang.seconds)
        if self.spec is not None and op is not None and fault_name is None:
            problems += self.spec.validate_response(op, status, payload)
        with self.lock:
            if content_creating and 200 <= status < 300:
                self._accepted_writes.append(start)
            for p in problems:
                self.validation_errors.append(f"{method} {path}: {p}")
            self.entries.append(
                LogEntry(
                    seq=len(self.entries) + 1,
                    method=method,
                    path=path,
                    query=query,
                    status=status,
                    start=start,
                    time=time.time(),
                    body=body,
                    fault=fault_name,
                    content_creating=content_creating,
                )
            )
        return status, self._rate_headers(path) | rheaders, payload

    def _admit_search(self, now: float) -> bool:
        with self.lock:
            recent = [t for t in self._searches if t > now - 60]
            if len(recent) >= self.searches_per_minute:
                return False
            self._searches.append(now)
            return True

    def _admit_write(self, now: float) -> bool:
        with self.lock:
            minute = sum(1 for t in self._accepted_writes if t > now - 60)
            hour = sum(1 for t in self._accepted_writes if t > now - 3600)
            return minute < self.writes_per_minute and hour < self.writes_per_hour

    def _rate_headers(self, path: str) -> dict[str, str]:
        search = path.startswith("/search/")
        return {
            "x-ratelimit-limit": "30" if search else "5000",
            "x-ratelimit-remaining": "29" if search else "4990",
            "x-ratelimit-used": "1" if search else "10",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "search" if search else "core",
            "x-github-api-version-selected": "2022-11-28",
        }

    def _fault_response(self, f: Fault, now: float) -> tuple[int, dict[str, str], Any]:
        if f.kind in ("status", "hang"):
            return f.status, {}, {"message": "Server Error" if f.status != 503 else "Service Unavailable"}
        if f.kind == "secondary":
            h = {"retry-after": str(f.retry_after)} if f.retry_after is not None else {}
            return 403, h, {"message": _SECONDARY_MESSAGE, "documentation_url": _DOCS}
        if f.kind == "too_many":
            return 429, {"retry-after": str(f.retry_after if f.retry_after is not None else 1)}, {
                "message": "Too Many Requests",
                "documentation_url": _DOCS,
            }
        if f.kind == "forbidden":
            return 403, {}, {"message": "Resource not accessible by personal access token",
                             "documentation_url": _DOCS, "status": "403"}
        if f.kind == "primary":
            return 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now + f.reset_in))}, {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": _DOCS,
            }
        raise ValueError(f"unknown fault kind {f.kind!r}")

    def _control(self, path: str) -> tuple[int, dict[str, str], Any]:
        if path == "/_standin/log":
            return 200, {}, [e.as_dict() for e in self.log()]
        if path == "/_standin/state":
            return 200, {}, {
                "issues": self.issues(),
                "validation_errors": list(self.validation_errors),
                "secondary_limit_violations": self.secondary_limit_violations,
                "search_limit_violations": self.search_limit_violations,
            }
        return 404, {}, {"message": "Not Found"}

    def _not_found(self) -> tuple[int, dict[str, str], Any]:
        return 404, {}, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"}

    def _invalid(self, resource: str, field_: str, message: str) -> tuple[int, dict[str, str], Any]:
        return 422, {}, {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": "custom", "field": field_, "message": message}],
            "documentation_url": _DOCS,
            "status": "422",
        }

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, token: str = ""
    ) -> tuple[int, dict[str, str], Any]:
        now = time.time()
        if path == "/user" and method == "GET":
            if token in self.app_tokens:
                return 403, {}, {"message": "Resource not accessible by integration",
                                 "documentation_url": f"{_DOCS}/users/users#get-the-authenticated-user", "status": "403"}
            return 200, {}, self.authenticated_user_obj(self._actor)
        if path == "/rate_limit" and method == "GET":
            core = {"limit": 5000, "remaining": 4990, "reset": int(now) + 3600, "used": 10}
            search = {"limit": 30, "remaining": 29, "reset": int(now) + 60, "used": 1}
            return 200, {}, {"resources": {"core": core, "search": search}, "rate": core}
        if path == "/search/issues" and method == "GET":
            return self._search(query, now)
        prefix = f"/repos/{self.repository}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return self._not_found()
        rest = path[len(prefix):]
        if rest == "" and method == "GET":
            return 200, {}, self.repo_obj()
        if rest == "/issues":
            if method == "POST":
                return self._create_issue(body, now)
            if method == "GET":
                return self._list_issues(query)
        if rest == "/issues/events" and method == "GET":
            # GitHub lists a repository's issue events newest first.
            events = sorted(self.issue_events, key=lambda e: e["id"], reverse=True)
            return self._page(query, [self._issue_event_obj(e) for e in events], f"{prefix}/issues/events")
        if rest == "/labels":
            if method == "POST":
                name = str(body.get("name", ""))
                if len(name) > 50:
                    return self._invalid("Label", "name", "name is too long (maximum is 50 characters)")
                if name.lower() in self.labels:
                    return 422, {}, {
                        "message": "Validation Failed",
                        "errors": [{"resource": "Label", "code": "already_exists", "field": "name"}],
                        "documentation_url": _DOCS,
                    }
                self.labels[name.lower()] = {
                    "id": self._new_id(),
                    "name": name,
                    "color": body.get("color", "ededed"),
                    "description": body.get("description"),
                }
                return 201, {}, self.label_obj(name)
            if method == "GET":
                return self._page(query, [self.label_obj(n) for n in sorted(self.labels)], f"{prefix}/labels")
        m = re.fullmatch(r"/labels/([^/]+)", rest)
        if m and method == "GET":
            return (200, {}, self.label_obj(m.group(1))) if m.group(1).lower() in self.labels else self._not_found()
        m = re.fullmatch(r"/assignees/([^/]+)", rest)
        if m and method == "GET":
            login = m.group(1)
            ok = login in self.assignable_users or (login == COPILOT_LOGIN and self.copilot_assignable)
            return (204, {}, None) if ok else self._not_found()
        m = re.fullmatch(r"/pulls/(\d+)", rest)
        if m and method == "GET":
            pr = self.issues_by_number.get(int(m.group(1)))
            return (200, {}, self.pull_obj(pr)) if pr is not None and pr.is_pull else self._not_found()
        m = re.fullmatch(r"/issues/(\d+)(/.*)?", rest)
        if m:
            issue = self.issues_by_number.get(int(m.group(1)))
            if issue is None:
                return self._not_found()
            return self._issue_route(method, m.group(2) or "", issue, query, body, now)
        return self._not_found()

    def _issue_route(
        self, method: str, sub: str, issue: _Issue, query: dict[str, list[str]], body: Any, now: float
    ) -> tuple[int, dict[str, str], Any]:
        base = f"/repos/{self.repository}/issues/{issue.number}"
        if sub == "" and method == "GET":
            return 200, {}, self.issue_obj(issue)
        if sub == "" and method == "PATCH":
            if "title" in body and len(str(body["title"])) > 256:
                return self._invalid("Issue", "title", "title is too long (maximum is 256 characters)")
            if "body" in body and body["body"] is not None and len(body["body"]) > 65536:
                return self._invalid("Issue", "body", "body is too long (maximum is 65536 characters)")
            if "title" in body:
                issue.title = body["title"]
            if "body" in body:
                issue.body = body["body"]
            if "labels" in body:
                for n in body["labels"]:
                    self._ensure_label(n if isinstance(n, str) else n["name"])
                issue.labels = [n if isinstance(n, str) else n["name"] for n in body["labels"]]
            state = body.get("state")
            if state == "closed" and issue.state != "closed":
                self._close(issue, body.get("state_reason") or "completed", now, self._actor, None)
            elif state == "open" and issue.state != "open":
                issue.state, issue.closed_at, issue.state_reason = "open", None, "reopened"
                issue.timeline.append({"event": "reopened", "created_at": now, "actor": self._actor, "commit_id": None,
                                       "state_reason": "reopened", "id": self._new_id()})
            issue.updated_at = now
            return 200, {}, self.issue_obj(issue)
        if sub == "/comments":
            if method == "POST":
                text = str(body.get("body", ""))
                if len(text) > 65536:
                    return self._invalid("IssueComment", "body", "body is too long (maximum is 65536 characters)")
                c = {"id": self._new_id(), "body": text, "user": self._actor, "created_at": now}
                issue.comments.append(c)
                issue.updated_at = now
                return 201, {"location": f"{self.api_url}{base}/comments"}, self.comment_obj(issue, c)
            if method == "GET":
                since = query.get("since", [None])[0]
                items = [c for c in issue.comments if since is None or c["created_at"] >= _parse_iso(since)]
                return self._page(query, [self.comment_obj(issue, c) for c in items], f"{base}/comments")
        if sub == "/labels" and method == "POST":
            names = body if isinstance(body, list) else body.get("labels", [])
            for n in names:
                name = n if isinstance(n, str) else n["name"]
                if len(name) > 50:
                    return self._invalid("Label", "name", "name is too long (maximum is 50 characters)")
                self._ensure_label(name)
                if name not in issue.labels:
                    issue.labels.append(name)
                    self._event(issue, "labeled", now, label=name)
            return 200, {}, [self.label_obj(n) for n in issue.labels]
        if sub == "/assignees" and method == "POST":
            wanted = list(body.get("assignees", []))
            if COPILOT_LOGIN in wanted and self.copilot_forbidden:
                return 403, {}, {
                    "message": "Resource not accessible by integration: copilot-swe-agent cannot be assigned with this token",
                    "documentation_url": _DOCS,
                    "status": "403",
                }
            if "agent_assignment" in body:
                issue.agent_assignments.append(dict(body["agent_assignment"]))
            for login in wanted:
                if login == COPILOT_LOGIN:
                    if self.copilot_assignable and "Copilot" not in issue.assignees:
                        issue.assignees.append("Copilot")
                        self._event(issue, "assigned", now, assignee="Copilot")
                elif login in self.assignable_users and login not in issue.assignees:
                    issue.assignees.append(login)
                    self._event(issue, "assigned", now, assignee=login)
            issue.updated_at = now
            return 201, {}, self.issue_obj(issue)
        if sub == "/timeline" and method == "GET":
            return self._page(query, [self._timeline_obj(issue, ev) for ev in issue.timeline], f"{base}/timeline")
        return self._not_found()

    def _timeline_obj(self, issue: _Issue, ev: dict[str, Any]) -> dict[str, Any]:
        if ev["event"] == "cross-referenced":
            src = self.issues_by_number[ev["source_number"]]
            return {
                "event": "cross-referenced",
                "actor": self.user_obj(src.user),
                "created_at": _iso(ev["created_at"]),
                "updated_at": _iso(ev["created_at"]),
                "source": {"type": "issue", "issue": self.issue_obj(src)},
            }
        # closed / reopened: GitHub's "state change" event; a close by a merge carries the commit
        commit = ev["commit_id"]
        return {
            "id": ev["id"],
            "node_id": f"CE_{ev['id']}",
            "url": f"{self._base()}/issues/events/{ev['id']}",
            "actor": self.user_obj(ev["actor"]),
            "event": ev["event"],
            "commit_id": commit,
            "commit_url": f"{self._base()}/commits/{commit}" if commit else None,
            "created_at": _iso(ev["created_at"]),
            "performed_via_github_app": None,
            "state_reason": ev["state_reason"],
        }

    def pull_obj(self, pr: _Issue) -> dict[str, Any]:
        """A pull request as ``GET /repos/{o}/{r}/pulls/{n}`` returns it."""
        b = f"{self._base()}/pulls/{pr.number}"
        html = f"https://github.example.com/{self.repository}/pull/{pr.number}"
        repo = {**self.repo_obj(), "has_downloads": False}
        branch = {"label": f"{self.owner}:fix-{pr.number}", "ref": f"fix-{pr.number}", "repo": repo,
                  "sha": hashlib.sha1(f"head{pr.number}".encode()).hexdigest(), "user": self.user_obj(pr.user)}
        merged = pr.merged_at is not None
        return {
            "url": b,
            "id": pr.id,
            "node_id": f"PR_{pr.id}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": f"{self._base()}/issues/{pr.number}",
            "commits_url": b + "/commits",
            "review_comments_url": b + "/comments",
            "review_comment_url": f"{self._base()}/pulls/comments{{/number}}",
            "comments_url": f"{self._base()}/issues/{pr.number}/comments",
            "statuses_url": f"{self._base()}/statuses/{branch['sha']}",
            "number": pr.number,
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "user": self.user_obj(pr.user),
            "body": pr.body,
            "labels": [self.label_obj(n) for n in pr.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": _iso(pr.created_at),
            "updated_at": _iso(pr.updated_at),
            "closed_at": _iso(pr.closed_at) if pr.closed_at else None,
            "merged_at": _iso(pr.merged_at) if pr.merged_at else None,
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": branch,
            "base": {**branch, "label": f"{self.owner}:main", "ref": "main"},
            "_links": {k: {"href": v} for k, v in {
                "self": b, "html": html, "issue": f"{self._base()}/issues/{pr.number}",
                "comments": f"{self._base()}/issues/{pr.number}/comments", "review_comments": b + "/comments",
                "review_comment": f"{self._base()}/pulls/comments{{/number}}", "commits": b + "/commits",
                "statuses": f"{self._base()}/statuses/{branch['sha']}",
            }.items()},
            "author_association": "OWNER",
            "auto_merge": None,
            "draft": False,
            "merged": merged,
            "mergeable": None if merged else True,
            "rebaseable": None if merged else True,
            "mergeable_state": "unknown" if merged else "clean",
            "merged_by": self.user_obj(self.owner) if merged else None,
            "comments": len(pr.comments),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 3,
            "deletions": 1,
            "changed_files": 1,
        }

    def _create_issue(self, body: Any, now: float) -> tuple[int, dict[str, str], Any]:
        title = str(body.get("title", ""))
        text = body.get("body")
        if not title:
            return self._invalid("Issue", "title", "title can't be blank")
        if len(title) > 256:
            return self._invalid("Issue", "title", "title is too long (maximum is 256 characters)")
        if text is not None and len(text) > 65536:
            return self._invalid("Issue", "body", "body is too long (maximum is 65536 characters)")
        labels = [n if isinstance(n, str) else n["name"] for n in body.get("labels", [])]
        for n in labels:
            if len(n) > 50:
                return self._invalid("Label", "name", "name is too long (maximum is 50 characters)")
            self._ensure_label(n)
        issue = self._new_issue(title, text, self._actor, labels, now)
        for login in body.get("assignees", []):
            if login in self.assignable_users:
                issue.assignees.append(login)
        loc = f"{self._base()}/issues/{issue.number}"
        return 201, {"location": loc}, self.issue_obj(issue)

    def _list_issues(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        state = query.get("state", ["open"])[0]
        labels = [x for x in query.get("labels", [""])[0].split(",") if x]
        since = query.get("since", [None])[0]
        creator = query.get("creator", [None])[0]
        items = [
            i
            for i in self.issues_by_number.values()
            if (state == "all" or i.state == state)
            and (creator is None or i.user.lower() == creator.lower())
            and all(lab in i.labels for lab in labels)
            and (since is None or i.updated_at >= _parse_iso(since))
        ]
        reverse = query.get("direction", ["desc"])[0] == "desc"
        key = query.get("sort", ["created"])[0]
        items.sort(key=lambda i: (i.updated_at if key == "updated" else i.created_at, i.number), reverse=reverse)
        return self._page(query, [self.issue_obj(i) for i in items], f"/repos/{self.repository}/issues")

    def _search(self, query: dict[str, list[str]], now: float) -> tuple[int, dict[str, str], Any]:
        q = query.get("q", [""])[0]
        phrases = re.findall(r'"([^"]*)"', q)
        rest = re.sub(r'"[^"]*"', " ", q).split()
        quals = [t for t in rest if ":" in t]
        words = [t for t in rest if ":" not in t]
        if not any(t.startswith(("is:issue", "is:pull-request", "is:pr", "type:")) for t in quals):
            return 422, {}, {
                "message": "Validation Failed",
                "errors": [{"resource": "Search", "field": "q", "code": "invalid"}],
                "documentation_url": _DOCS,
            }
        items = []
        for i in self.issues_by_number.values():
            if now < i.indexed_at:
                continue
            ok = True
            scope = "both"
            for t in quals:
                k, _, v = t.partition(":")
                if k == "repo":
                    ok &= v.lower() == self.repository.lower()
                elif k == "is" and v == "issue":
                    ok &= not i.is_pull
                elif k == "is" and v in ("pr", "pull-request"):
                    ok &= i.is_pull
                elif k == "is" and v in ("open", "closed"):
                    ok &= i.state == v
                elif k == "label":
                    ok &= v.strip('"') in i.labels
                elif k == "author":
                    # users by login, GitHub Apps as author:app/<slug> (their bot login is <slug>[bot])
                    ok &= (i.user.lower() == v.lower()) or (v.startswith("app/") and i.user.lower() == f"{v[4:]}[bot]".lower())
                elif k == "in" and v in ("title", "body"):
                    scope = v
            text = {"title": i.title, "body": i.body or "", "both": f"{i.title}\n{i.body or ''}"}[scope].lower()
            ok &= all(p.lower() in text for p in phrases) and all(w.lower() in text for w in words)
            if ok:
                items.append(self.issue_obj(i, search=True))
        status, headers, page = self._page(query, items, "/search/issues")
        return status, headers, {
            "total_count": len(items),
            "incomplete_results": False,
            "items": page,
            "search_type": "lexical",
        }

    def _page(self, query: dict[str, list[str]], items: list[Any], path: str) -> tuple[int, dict[str, str], Any]:
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        headers: dict[str, str] = {}
        if page < last:
            rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "page")
            sep = "&" if rest else ""
            headers["link"] = (
                f'<{self.api_url}{path}?{rest}{sep}page={page + 1}>; rel="next", '
                f'<{self.api_url}{path}?{rest}{sep}page={last}>; rel="last"'
            )
        return 200, headers, items[(page - 1) * per_page : page * per_page]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, rheaders, payload = self.server.standin.handle(self.command, self.path, headers, raw)
        except Exception as exc:  # a stand-in bug must show up as a failing test, not a hang
            with self.server.standin.lock:
                self.server.standin.validation_errors.append(f"stand-in crashed on {self.command} {self.path}: {exc!r}")
            status, rheaders, payload = 500, {}, {"message": f"stand-in error: {exc!r}"}
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            if payload is not None:
                self.send_header("content-type", "application/json; charset=utf-8")
            for k, v in rheaders.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout), as real clients do

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
