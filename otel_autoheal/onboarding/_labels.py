"""The labels autoheal relies on, and creating the missing ones through the REST API."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from otel_autoheal.sinks.github.client import GitHubClient

__all__ = ["LABELS", "Label", "LabelClient", "LabelError", "gh_commands"]

_TIMEOUT = 30.0
_T = TypeVar("_T")


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


class LabelClient:
    """Lists and creates labels of ``repository`` with the service's GitHub client (no retries)."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        # Imported here: PyGithub is only needed once there is a token to use.
        from otel_autoheal.sinks.github.client import GitHubClient

        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self._client: GitHubClient = GitHubClient(
            api_url=self.api_url, repository=repository, token=token, timeout=_TIMEOUT, user_agent="otel-autoheal-init"
        )

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        """``call()``, its failures as ``LabelError`` naming ``what`` and GitHub's answer."""
        import requests

        from github import GithubException

        try:
            return call()
        except GithubException as exc:
            raise LabelError(f"{what} failed: HTTP {exc.status} {_message(exc.data)}") from None
        except requests.RequestException as exc:
            raise LabelError(f"cannot reach {self.api_url}: {exc}") from None

    def authenticated_login(self) -> str | None:
        """The token's login (``GET /user``); None when the token may not read it (a GitHub App's, 403)."""
        return self._call("reading the token's user", self._client.authenticated_login)

    def existing(self) -> set[str]:
        """Names of the repository's labels, lower-cased (GitHub compares them case-insensitively)."""
        return self._call(f"listing labels of {self.repository}", self._client.label_names)

    def create(self, label: Label) -> bool:
        """Create ``label``; False when it already exists."""
        return self._call(
            f"creating label {label.name!r}",
            lambda: self._client.create_label(label.name, label.color, label.description),
        )


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
