"""Links from in-app frames to the failing line at the deployed revision on GitHub.

A link is ``{web}/{owner}/{repo}/blob/{revision}/{path}#L{line}``, built here from checked parts:

- **repository**: ``code_repositories[service.name]`` when configured (``owner/repo`` or
  ``owner/repo/folder``, the folder prefixed to every path); else the OpenTelemetry resource
  attribute ``vcs.repository.url.full`` (``https://HOST/owner/repo(.git)``, ``git@HOST:owner/repo``
  or ``ssh://git@HOST/owner/repo``) when HOST is the GitHub the service talks to (github.com, or
  the host of ``GITHUB_API_URL`` / ``[github] api_url`` for GitHub Enterprise) and the receiver
  did not judge the data untrusted (a browser, an untrusted token): a page's script may claim any
  repository, so its links come from the configuration only;
- **revision**: ``vcs.ref.head.revision`` (a commit hash or a ref name), else the tag
  ``code_tag_template`` makes of ``service.version`` (only with a configured repository);
- **path** (repository-relative), the first rule that applies:

  1. the path the instrumentation sent next to the frame's source lines (the Python
     instrumentation knows the checkout: the nearest folder holding ``.git``);
  2. a relative path with a folder as it is (``src/cart.ts``, ``webpack://shop/./src/cart.ts`` →
     ``src/cart.ts``), a Go module path of that repository without its module prefix
     (``github.com/acme/shop/cart/cart.go`` → ``cart/cart.go``); a bare file name (Java's
     ``Cart.java``) says nothing about its folder;
  3. what follows the last folder named like the repository (a checkout is a folder named after
     its repository: ``/home/runner/work/shop/shop/app/cli.py`` → ``app/cli.py``);
  4. what follows a deployment root (``releases/<name>/``, ``current/``, ``/app/``,
     ``/usr/src/app/``, ``/var/task/``, ``/srv/app/``, ``/opt/app/``, ``/workspace/``) or
     ``site-packages``/``dist-packages`` (an installed package: ``shop/cart.py``);

  otherwise no link: a wrong guess would send a reader to the wrong file. Served URLs
  (``https://…/assets/app.js``) never link; a source map resolves them first.

Only in-app frames are linked; every part is validated and percent-encoded, so sender text can
never add query strings, fragments or other hosts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from otel_autoheal.config import Config
from otel_autoheal.model import ExceptionRecord, Frame

__all__ = ["CodeLinker", "RepoRef", "repository_path", "web_base_url"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}$")
_SEGMENT = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:]+)$")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEPLOY_ROOTS: tuple[tuple[str, ...], ...] = (
    ("usr", "src", "app"), ("var", "task"), ("srv", "app"), ("opt", "app"), ("app",), ("workspace",),
)
_RELEASE_PARENTS = frozenset({"releases", "deploys", "deployments"})
_PACKAGE_FOLDERS = frozenset({"site-packages", "dist-packages"})


def web_base_url(api_url: str) -> str:
    """GitHub's web address for a REST base URL: ``https://api.github.com`` → ``https://github.com``,
    ``https://ghe.example.com/api/v3`` → ``https://ghe.example.com``."""
    parts = urlsplit(api_url.strip() or "https://api.github.com")
    host = (parts.hostname or "api.github.com").lower()
    if host == "api.github.com":
        host = "github.com"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme if parts.scheme in ('http', 'https') else 'https'}://{host}{port}"


@dataclass(frozen=True)
class RepoRef:
    """Where one record's code lives: repository, revision and the folder its paths start in."""

    owner: str
    repo: str
    revision: str
    folder: str = ""


def _parse_repository_url(url: str, host: str) -> tuple[str, str] | None:
    """``owner, repo`` of a clone URL on ``host``, else ``None``."""
    url = url.strip()
    scp = _SCP_LIKE.match(url)
    if scp and not _URL_SCHEME.match(url):
        url_host, path = scp.group("host"), scp.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git"):
            return None
        url_host, path = parts.hostname or "", parts.path
    if url_host.lower() != host:
        return None
    segments = [s for s in path.split("/") if s]
    if len(segments) != 2:
        return None
    owner, repo = segments[0], segments[1].removesuffix(".git")
    if not (_NAME.match(owner) and _NAME.match(repo)):
        return None
    return owner, repo


def _joined(parts: list[str] | None) -> str | None:
    """``parts`` as a repository path: no empty or ``.`` segments, ``None`` for ``..`` or control characters."""
    if not parts:
        return None
    out = [part for part in parts if part not in ("", ".")]
    if not out or any(part == ".." or not _SEGMENT.match(part) for part in out):
        return None
    return "/".join(out)


def _after_deploy_root(segments: list[str]) -> list[str] | None:
    for index in range(len(segments) - 2, -1, -1):
        if segments[index] in _PACKAGE_FOLDERS:
            return segments[index + 1:]
        if segments[index] in _RELEASE_PARENTS and index + 2 < len(segments):
            return segments[index + 2:]
        if segments[index] == "current":
            return segments[index + 1:]
    for root in _DEPLOY_ROOTS:
        if tuple(segments[: len(root)]) == root and len(segments) > len(root):
            return segments[len(root):]
    return None


def repository_path(filename: str, repo: str, sent_path: str = "", owner: str = "") -> str | None:
    """The repository-relative path of ``filename`` by the rules in the module docstring, or ``None``."""
    if sent_path and not sent_path.startswith(("/", "\\")) and not _URL_SCHEME.match(sent_path):
        path = _joined(sent_path.replace("\\", "/").split("/"))
        if path:
            return path
    name = filename.strip()
    scheme = _URL_SCHEME.match(name)
    if scheme:
        kind = scheme.group().lower()
        if kind in ("http://", "https://"):
            return None
        if kind != "file://":  # webpack://<namespace>/./src/x.ts and the like: the rest is project-relative
            rest = name[scheme.end():].split("/", 1)
            return _joined(rest[1].split("/")) if len(rest) == 2 else None
        name = urlsplit(name).path
    name = name.replace("\\", "/")
    if re.match(r"^[A-Za-z]:/", name):  # Windows drive
        name = name[2:]
    segments = [s for s in name.split("/") if s not in ("", ".")]
    if not segments or ".." in segments:
        return None
    if not name.startswith("/"):
        if "." in segments[0] and len(segments) > 1:  # a Go module path (-trimpath): host/owner/repo/…
            return _joined(segments[3:]) if segments[1:3] == [owner, repo] and len(segments) > 3 else None
        return _joined(segments) if len(segments) > 1 else None  # a bare name (Java, C#): folder unknown
    for index in range(len(segments) - 2, -1, -1):
        if segments[index] == repo:
            return _joined(segments[index + 1:])
    return _joined(_after_deploy_root(segments))


class CodeLinker:
    """Builds the links of one service configuration (see the module docstring for the rules)."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        api_url = str(config.github.get("api_url") or env.get("GITHUB_API_URL", "") or "https://api.github.com")
        self.web = web_base_url(api_url)
        self.host = urlsplit(self.web).hostname or "github.com"
        self.repositories = dict(config.code_repositories)
        self.tag_template = config.code_tag_template

    def repository(self, record: ExceptionRecord) -> RepoRef | None:
        """Where ``record``'s code lives, or ``None`` when that is not known well enough to link."""
        resource = record.resource
        revision = str(resource.get("vcs.ref.head.revision") or "").strip()
        configured = self.repositories.get(record.service_name)
        if configured:
            owner, repo, *folder = configured.split("/")
            if not revision and self.tag_template and record.service_version:
                revision = self.tag_template.replace("{version}", record.service_version)
            ref = RepoRef(owner, repo, revision, "/".join(folder))
        else:
            if record.ingest_trust == "untrusted":
                return None
            parsed = _parse_repository_url(str(resource.get("vcs.repository.url.full") or ""), self.host)
            if parsed is None:
                return None
            ref = RepoRef(parsed[0], parsed[1], revision)
        if not _REVISION.match(ref.revision) or ".." in ref.revision:
            return None
        return ref

    def link(self, frame: Frame, record: ExceptionRecord, sent_path: str = "") -> str | None:
        """The URL of ``frame``'s line, or ``None`` (not in-app, no line, repository or path unknown)."""
        if not frame.in_app or frame.instrumentation or not frame.lineno:
            return None
        ref = self.repository(record)
        if ref is None:
            return None
        path = repository_path(frame.filename, ref.repo, sent_path, ref.owner)
        if path is None:
            return None
        if ref.folder and not path.startswith(ref.folder + "/"):
            path = f"{ref.folder}/{path}"
        return (
            f"{self.web}/{quote(ref.owner)}/{quote(ref.repo)}/blob/{quote(ref.revision, safe='/')}"
            f"/{quote(path, safe='/')}#L{int(frame.lineno)}"
        )
