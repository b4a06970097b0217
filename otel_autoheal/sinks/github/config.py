"""Settings of the GitHub sink: explicit argument > environment variable > ``[github]`` table > default.

Read with the service's loader (``otel_autoheal._settings``): the same strict types, the same
errors (``SinkSettingError``, a ``ConfigError`` naming the key as written and where it came from),
and ``GitHubConfig.set_by`` recording every value's source.

The token is held in ``GitHubConfig.token`` only; it is excluded from ``repr`` and from
``describe()``, and only its *source* (``token_source``) is ever reported.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from otel_autoheal._settings import SettingSource, reject_unknown, resolve, setting_types
from otel_autoheal.errors import SinkSettingError

__all__ = [
    "ENV_API_URL",
    "ENV_GH_TOKEN",
    "ENV_REPOSITORY",
    "ENV_TOKEN",
    "GitHubConfig",
    "github_configured",
]

ENV_REPOSITORY = "GITHUB_REPOSITORY"
ENV_TOKEN = "GITHUB_TOKEN"
ENV_GH_TOKEN = "GH_TOKEN"
ENV_API_URL = "GITHUB_API_URL"
DEFAULT_API_URL = "https://api.github.com"
COPILOT_LOGIN = "copilot-swe-agent[bot]"

#: field name -> environment variable for every setting that has one (besides repository/token/api_url).
ENV_KEYS: dict[str, str] = {
    "labels": "AUTOHEAL_GITHUB_LABELS",
    "min_write_interval": "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL",
    "writes_per_minute": "AUTOHEAL_GITHUB_WRITES_PER_MINUTE",
    "writes_per_hour": "AUTOHEAL_GITHUB_WRITES_PER_HOUR",
    "new_issues_per_hour": "AUTOHEAL_GITHUB_NEW_ISSUES_PER_HOUR",
    "comment_interval": "AUTOHEAL_GITHUB_COMMENT_INTERVAL",
    "state_check_interval": "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL",
    "request_timeout": "AUTOHEAL_GITHUB_TIMEOUT",
    "backoff_base": "AUTOHEAL_GITHUB_BACKOFF_BASE",
    "backoff_max": "AUTOHEAL_GITHUB_BACKOFF_MAX",
    "search_before_create": "AUTOHEAL_GITHUB_SEARCH_BEFORE_CREATE",
    "handoff": "AUTOHEAL_GITHUB_HANDOFF",
    "handoff_min_occurrences": "AUTOHEAL_GITHUB_HANDOFF_MIN_OCCURRENCES",
    "handoff_daily_budget": "AUTOHEAL_GITHUB_HANDOFF_DAILY_BUDGET",
    "handoff_dry_run": "AUTOHEAL_GITHUB_HANDOFF_DRY_RUN",
    "handoff_require_in_app": "AUTOHEAL_GITHUB_HANDOFF_REQUIRE_IN_APP",
    "handoff_untrusted_sources": "AUTOHEAL_GITHUB_HANDOFF_UNTRUSTED_SOURCES",
    "handoff_allow_sources": "AUTOHEAL_GITHUB_HANDOFF_ALLOW_SOURCES",
    "handoff_base_branch": "AUTOHEAL_GITHUB_HANDOFF_BASE_BRANCH",
    "handoff_target_repo": "AUTOHEAL_GITHUB_HANDOFF_TARGET_REPO",
    "issue_poll_interval": "AUTOHEAL_GITHUB_ISSUE_POLL_INTERVAL",
    "verify_window": "AUTOHEAL_GITHUB_VERIFY_WINDOW",
    "login": "AUTOHEAL_GITHUB_LOGIN",
    "claim_lease": "AUTOHEAL_GITHUB_CLAIM_LEASE",
}

_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class GitHubConfig:
    """Everything the GitHub sink needs. Build it with ``from_env`` (or directly in tests).

    Intervals are seconds. Budgets follow GitHub's documented secondary limits: at most 80
    content-creating requests per minute and 500 per hour, and at least one second between writes.
    """

    #: ``owner/name`` of the repository issues are filed in (``GITHUB_REPOSITORY``).
    repository: str
    #: The API token; never logged, printed, stored or put in an exception message.
    token: str = field(repr=False)
    #: Where the token came from: ``GITHUB_TOKEN``, ``GH_TOKEN``, ``gh auth token`` or ``argument``.
    token_source: str = "argument"
    #: REST base URL (``GITHUB_API_URL``); GHES: ``https://HOST/api/v3``.
    api_url: str = DEFAULT_API_URL
    #: Labels put on every issue besides ``autoheal`` and ``source:<source>``.
    labels: tuple[str, ...] = ()
    #: Minimum spacing between two writes (GitHub asks for >= 1 s).
    min_write_interval: float = 1.0
    writes_per_minute: int = 80
    writes_per_hour: int = 500
    #: New issues filed per hour at most; the rest wait in the outbox.
    new_issues_per_hour: int = 30
    #: At most one comment per issue per this many seconds (milestones in between are coalesced).
    comment_interval: float = 3600.0
    #: How long a read issue state (open/closed/not planned) is trusted before it is read again.
    state_check_interval: float = 300.0
    #: Per-request HTTP timeout.
    request_timeout: float = 15.0
    #: Jittered exponential backoff for 5xx, timeouts and connection errors: base and ceiling.
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    #: Search for the fingerprint marker before every first create, so issues filed before the
    #: state database was lost (or by another instance) are adopted, not duplicated. Costs one
    #: search per new group (searches are kept under 20/minute). Retries always search.
    search_before_create: bool = True
    #: ``none`` or ``copilot``: assign filed issues to the Copilot coding agent.
    handoff: str = "none"
    handoff_min_occurrences: int = 3
    handoff_daily_budget: int = 5
    handoff_dry_run: bool = False
    #: Only hand off groups whose stack has at least one in-app frame.
    handoff_require_in_app: bool = True
    #: Sources whose errors are attacker-influenced; never handed off unless in ``handoff_allow_sources``.
    handoff_untrusted_sources: tuple[str, ...] = ("browser",)
    handoff_allow_sources: tuple[str, ...] = ()
    #: Branch Copilot starts from (default: the repository's default branch).
    handoff_base_branch: str = ""
    #: Repository Copilot works in (default: ``repository``).
    handoff_target_repo: str = ""
    #: How often the worker lists the issues updated since its last look (one read per 100
    #: issues) to learn about closes, and the PRs that fixed them, while an error is silent.
    #: 0 turns the poll off: a close is then only read when the error occurs again.
    issue_poll_interval: float = 300.0
    #: After the version carrying a fix is first seen (any group of the service), how many seconds
    #: the group must stay silent before one closing comment with the numbers is posted
    #: (default 7 days). 0 turns the closing comment off.
    verify_window: float = 7 * 86400.0
    #: The login the token files issues as. Empty (default): learned from ``GET /user``; a
    #: GitHub App installation token may not read it (403), then from the author of the first
    #: issue the sink files. Only issues by this login are ever taken for the sink's own; set
    #: it (``my-app[bot]``) so that an app token can adopt its issues after a lost state.
    login: str = ""
    #: With several instances sharing PostgreSQL: seconds an instance's claim on an outbox item
    #: lasts without renewal (renewed every third of it while the instance lives), i.e. how soon
    #: another instance finishes the items of one that died (default 60).
    claim_lease: float = 60.0
    #: Where each value came from (``repository``, ``token``, ``labels``, …), filled by ``from_env``;
    #: not a setting. Default: empty, meaning every value is its default.
    set_by: dict[str, SettingSource] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _REPO_RE.match(self.repository or ""):
            raise _bad(ENV_REPOSITORY, f"must be 'owner/name', got {self.repository!r}")
        if not self.token or any(c.isspace() for c in self.token):
            raise _bad(ENV_TOKEN, "is empty or contains whitespace")
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _bad(ENV_API_URL, f"must be an http(s) URL, got {self.api_url!r}")
        for name in ("min_write_interval", "comment_interval", "state_check_interval", "backoff_base",
                     "issue_poll_interval", "verify_window"):
            if getattr(self, name) < 0:
                raise _bad(ENV_KEYS[name], "must not be negative")
        if self.request_timeout <= 0:
            raise _bad(ENV_KEYS["request_timeout"], "must be positive")
        if self.claim_lease <= 0:
            raise _bad(ENV_KEYS["claim_lease"], "must be positive")
        if self.backoff_max < self.backoff_base:
            raise _bad(ENV_KEYS["backoff_max"], "must be >= the backoff base")
        for name in ("writes_per_minute", "writes_per_hour", "new_issues_per_hour"):
            if getattr(self, name) < 1:
                raise _bad(ENV_KEYS[name], "must be at least 1")
        if self.writes_per_minute > 80 or self.writes_per_hour > 500:
            raise _bad(ENV_KEYS["writes_per_minute"], "GitHub allows at most 80 writes/minute and 500/hour")
        if self.handoff not in ("none", "copilot"):
            raise _bad(ENV_KEYS["handoff"], f"must be 'none' or 'copilot', got {self.handoff!r}")
        if self.handoff_min_occurrences < 1 or self.handoff_daily_budget < 0:
            raise _bad(ENV_KEYS["handoff_min_occurrences"], "must be >= 1 (daily budget >= 0)")
        for lab in self.all_labels("x" * 8):
            if len(lab) > 50:
                raise _bad(ENV_KEYS["labels"], f"label {lab!r} is longer than GitHub's 50 characters")
        if self.login and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?", self.login):
            raise _bad(ENV_KEYS["login"], f"must be a GitHub login (a user, or <app-slug>[bot]), got {self.login!r}")
        if self.handoff_target_repo and not _REPO_RE.match(self.handoff_target_repo):
            raise _bad(ENV_KEYS["handoff_target_repo"], "must be 'owner/name'")

    def all_labels(self, source: str) -> list[str]:
        """Labels for an issue of ``source``: autoheal, the configured ones, ``source:<source>``."""
        out = ["autoheal"]
        for lab in self.labels:
            if lab and lab not in out:
                out.append(lab)
        if source:
            out.append(f"source:{source}"[:50])
        return out

    def describe(self) -> dict[str, Any]:
        """The settings without the token, for status output."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("token", "set_by")}
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        file: Mapping[str, Any] | None = None,
        file_path: str = "",
        use_gh_cli: bool = True,
    ) -> GitHubConfig:
        """Read the settings: ``overrides`` > ``env`` (default ``os.environ``) > ``file`` > defaults.

        ``overrides`` and ``file`` (the ``[github]`` table of autoheal.toml, read from
        ``file_path``) use the field names; ``file`` may also hold ``token_command`` (e.g.
        ``"gh auth token"``), never a token. The token comes from ``GITHUB_TOKEN``, else
        ``GH_TOKEN``, else ``token_command``, else ``gh auth token`` when the GitHub CLI is
        installed and logged in. Raises ``SinkSettingError`` naming the key and its source.
        """
        env = os.environ if env is None else env
        over = dict(overrides or {})
        section = dict(file or {})
        if "token" in section:
            raise _bad("github.token", "do not put the token in the config file; use GITHUB_TOKEN or token_command")
        types = _types()
        reject_unknown(section, [*types, "token_command"], prefix="github.", path=file_path,
                       what="is not a GitHub sink setting", error=SinkSettingError)
        for name in over:
            if name not in types and name not in ("token", "token_source"):
                raise _bad(name, "is not a GitHub sink setting")
        token_command = section.pop("token_command", "")
        if not isinstance(token_command, str):
            where = SettingSource("file", "github.token_command", file_path).place
            raise _bad("github.token_command", f"expected a command line, got {token_command!r} ({where})")
        env_names = {name: var for name, var in _ENV_NAMES.items() if name in types}
        stripped = {var: env[var].strip() for var in env_names.values() if var in env}
        got = resolve(types, file=section, file_path=file_path, file_prefix="github.", env=stripped,
                      env_names=env_names, overrides={k: v for k, v in over.items() if k in types},
                      error=SinkSettingError)
        values, set_by = got.values, dict(got.sources)
        if not values.get("repository"):
            raise _bad(ENV_REPOSITORY, "is not set (owner/name of the repository to file issues in)")
        values["api_url"] = str(values.get("api_url") or DEFAULT_API_URL).rstrip("/")
        token, source = over.get("token"), str(over.get("token_source", "argument"))
        if token:
            if not isinstance(token, str):
                raise _bad("token", "expected a string (passed as an argument)")
            set_by["token"] = SettingSource("argument", "token")
        else:
            token, source = _find_token(env, values["api_url"], use_gh_cli, token_command.strip())
            set_by["token"] = _token_origin(source, file_path)
        try:
            return cls(token=token, token_source=source, set_by=set_by, **values)
        except SinkSettingError as exc:  # name the setting as it was written, and where
            origin = set_by.get(_FIELD_OF.get(exc.key, ""))
            if origin is None or origin.kind == "default":
                raise
            raise _bad(origin.name, f"{exc.problem} ({origin.place})") from None

    @classmethod
    def for_service(cls, config: object, env: Mapping[str, str] | None = None) -> GitHubConfig:
        """The settings ``serve`` and ``status`` use: env > the ``[github]`` table of the service's config."""
        origin = getattr(config, "set_by", {}).get("github")
        return cls.from_env(env, file=dict(getattr(config, "github", {}) or {}),
                            file_path=origin.path if origin is not None else "")


#: Every setting's environment variable.
_ENV_NAMES: dict[str, str] = {"repository": ENV_REPOSITORY, "api_url": ENV_API_URL, **ENV_KEYS}
#: Validation errors are keyed by the variable; this finds the setting behind it.
_FIELD_OF: dict[str, str] = {var: name for name, var in _ENV_NAMES.items()}


@functools.cache
def _types() -> dict[str, Any]:
    return setting_types(GitHubConfig, skip=("token", "token_source", "set_by"))


def _token_origin(source: str, file_path: str) -> SettingSource:
    if source in (ENV_TOKEN, ENV_GH_TOKEN):
        return SettingSource("env", source)
    if source == "token_command":
        return SettingSource("file", "github.token_command", file_path)
    return SettingSource("default", path=source)


def github_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when a repository is set; the GitHub sink is then chosen (the token may still be missing)."""
    env = os.environ if env is None else env
    return bool(env.get(ENV_REPOSITORY, "").strip())


def _bad(key: str, problem: str) -> SinkSettingError:
    return SinkSettingError(key, problem)


def _run_for_token(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _find_token(env: Mapping[str, str], api_url: str, use_gh_cli: bool, token_command: str = "") -> tuple[str, str]:
    for key in (ENV_TOKEN, ENV_GH_TOKEN):
        value = env.get(key, "").strip()
        if value:
            return value, key
    if token_command:
        value = _run_for_token(shlex.split(token_command))
        if not value:
            raise _bad("github.token_command", "printed no token (check the command and its login)")
        return value, "token_command"
    gh = shutil.which("gh") if use_gh_cli else None
    if gh:
        host = urlsplit(api_url).hostname or "github.com"
        host = "github.com" if host == "api.github.com" else host
        value = _run_for_token([gh, "auth", "token", "--hostname", host])
        if value:
            return value, "gh auth token"
    raise _bad(ENV_TOKEN, "no token: set GITHUB_TOKEN or GH_TOKEN, or log in with `gh auth login`")
