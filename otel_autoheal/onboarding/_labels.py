"""The labels autoheal relies on, and creating the missing ones through the REST API."""

from __future__ import annotations

import json
import re
import shlex
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["LABELS", "Label", "LabelClient", "LabelError", "gh_commands"]

_TIMEOUT = 30.0
_MAX_PAGES = 20


@dataclass(frozen=True)
class Label:
    """A label: GitHub takes names up to 50 characters, hex colours without '#', descriptions up to 100."""

    name: str
    color: str
    description: str


LABELS: tuple[Label, ...] = (
    Label("autoheal", "1d76db", "Filed by otel-autoheal; handed to the Copilot coding agent when the gates pass"),
    Label("autoheal:hold", "fbca04", "Do not hand this autoheal issue to an agent"),
    Label("autoheal:needs-human", "d93f0b", "The agent could not take this autoheal issue; a person has to"),
    Label("autoheal:unverified", "b60205", "Labelled autoheal but not provably filed by otel-autoheal; never handed over"),
    Label("source:cli", "c5def5", "Error reported by a command-line program"),
    Label("source:mcp", "c5def5", "Error reported by an MCP server tool"),
    Label("source:browser", "e99695", "Error reported from a browser: untrusted input, gated before agents"),
    Label("source:node", "c5def5", "Error reported by a Node.js program"),
)


class LabelError(Exception):
    """The labels could not be listed or created."""


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', part)
        if m:
            return m.group(1)
    return None


class LabelClient:
    """Lists and creates labels of ``repository`` over the REST API (plain urllib, no retries)."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.token = token

    def _request(self, method: str, url: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "otel-autoheal-init")
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
                raw, status = resp.read(), resp.status
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
            headers = {k.lower(): v for k, v in exc.headers.items()}
        except (urllib.error.URLError, OSError) as exc:
            raise LabelError(f"cannot reach {self.api_url}: {exc}") from None
        try:
            doc = json.loads(raw) if raw.strip() else None
        except ValueError:
            doc = None
        return status, doc, headers

    def authenticated_login(self) -> str | None:
        """The token's login (``GET /user``); None when the token may not read it (a GitHub App's, 403)."""
        status, doc, _ = self._request("GET", f"{self.api_url}/user")
        if status == 200 and isinstance(doc, dict) and doc.get("login"):
            return str(doc["login"])
        if status in (403, 404):
            return None
        raise LabelError(f"reading the token's user failed: HTTP {status} {_message(doc)}")

    def existing(self) -> set[str]:
        """Names of the repository's labels, lower-cased (GitHub compares them case-insensitively)."""
        url: str | None = f"{self.api_url}/repos/{self.repository}/labels?per_page=100"
        names: set[str] = set()
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            status, doc, headers = self._request("GET", url)
            if status != 200 or not isinstance(doc, list):
                raise LabelError(f"listing labels of {self.repository} failed: HTTP {status} {_message(doc)}")
            names.update(str(lab.get("name", "")).lower() for lab in doc if isinstance(lab, dict))
            url = _next_link(headers.get("link", ""))
        return names

    def create(self, label: Label) -> bool:
        """Create ``label``; False when it already exists."""
        body = {"name": label.name, "color": label.color, "description": label.description}
        status, doc, _ = self._request("POST", f"{self.api_url}/repos/{self.repository}/labels", body)
        if status == 201:
            return True
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if status == 422 and any(isinstance(e, dict) and e.get("code") == "already_exists" for e in errors or []):
            return False
        raise LabelError(f"creating label {label.name!r} failed: HTTP {status} {_message(doc)}")


def _message(doc: Any) -> str:
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def gh_commands(labels: tuple[Label, ...] | list[Label], repository: str | None) -> list[str]:
    """``gh label create`` command lines a user can paste to create ``labels`` by hand."""
    repo = f" --repo {shlex.quote(repository)}" if repository else ""
    return [
        f"gh label create {shlex.quote(lab.name)} --color {lab.color} "
        f"--description {shlex.quote(lab.description)}{repo}"
        for lab in labels
    ]
