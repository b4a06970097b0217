"""``otel-autoheal init``: show the plan, ask, then write the files and create the labels."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from otel_autoheal.errors import ConfigError
from otel_autoheal.onboarding._files import FileChange, plan_files
from otel_autoheal.onboarding._labels import LABELS, Label, LabelClient, LabelError, gh_commands

__all__ = ["ENV_API_URL", "ENV_GH_TOKEN", "ENV_REPOSITORY", "ENV_TOKEN", "add_init_arguments", "run_init"]

ENV_TOKEN = "GITHUB_TOKEN"
ENV_GH_TOKEN = "GH_TOKEN"
ENV_REPOSITORY = "GITHUB_REPOSITORY"
ENV_API_URL = "GITHUB_API_URL"
DEFAULT_API_URL = "https://api.github.com"

_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_REMOTE_RE = re.compile(r"github\.com[:/]+([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")

_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")

NEXT_STEPS = """\
Next steps:
  1. Commit and push the .github/ changes to the default branch (workflows only run from there).
  2. Set the REQUIRED repository variable AUTOHEAL_BOT_LOGIN (see above): the gate hands over only
     issues opened by this login whose body starts with otel-autoheal's marker and data block.
  3. Add the repository secret AUTOHEAL_COPILOT_TOKEN: a user token (fine-grained PAT with read and
     write on Actions, Contents, Issues and Pull requests, or a classic PAT with `repo`) of a user
     with a Copilot plan that includes the coding agent. GITHUB_TOKEN and GitHub App tokens cannot
     assign Copilot.
  4. Optional repository variables: AUTOHEAL_BASE_BRANCH, AUTOHEAL_MIN_OCCURRENCES (3),
     AUTOHEAL_REQUIRE_IN_APP (true), AUTOHEAL_DAILY_BUDGET (5), AUTOHEAL_ALLOW_SOURCES=browser or
     AUTOHEAL_ALLOW_UNTRUSTED=true (hand over groups the service marked untrusted too),
     AUTOHEAL_COPILOT=false (gates only), AUTOHEAL_FALLBACK_PR=true (draft PR with a failing test
     scaffold when Copilot is unavailable; also enable "Allow GitHub Actions to create and approve
     pull requests"), AUTOHEAL_CUSTOM_INSTRUCTIONS."""


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``init`` options to ``parser`` (the subparser the CLI creates for ``init``)."""
    parser.add_argument("--yes", "-y", action="store_true", help="write without asking")
    parser.add_argument(
        "--repo-dir", default=".", metavar="DIR", help="checkout of the repository to onboard (default: .)"
    )
    parser.add_argument(
        "--base-branch",
        default=None,
        metavar="BRANCH",
        help="branch Copilot starts from (default: the repository's default branch)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the plan and write nothing")
    parser.add_argument(
        "--bot-login",
        default=None,
        metavar="LOGIN",
        help="login otel-autoheal files issues as, for the AUTOHEAL_BOT_LOGIN variable (default: the user of "
        "$GITHUB_TOKEN; a GitHub App files as <app-slug>[bot])",
    )
    parser.add_argument(
        "--repo",
        default=None,
        metavar="OWNER/NAME",
        help=f"GitHub repository for the labels (default: ${ENV_REPOSITORY}, else the origin remote)",
    )


def _option(options: argparse.Namespace | Mapping[str, Any] | None, name: str, default: Any) -> Any:
    if options is None:
        return default
    if isinstance(options, Mapping):
        value = options.get(name, default)
    else:
        value = getattr(options, name, default)
    return default if value is None else value


def _git_toplevel(repo_dir: Path) -> Path:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError("--repo-dir", f"cannot run git: {exc}") from None
    if out.returncode != 0:
        raise ConfigError("--repo-dir", f"{repo_dir} is not inside a git checkout")
    return Path(out.stdout.strip())


def _origin_repository(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _REMOTE_RE.search(out.stdout.strip()) if out.returncode == 0 else None
    return m.group(1) if m else None


def _resolve_repository(explicit: str | None, root: Path) -> str | None:
    repo = explicit or os.environ.get(ENV_REPOSITORY) or _origin_repository(root)
    if repo and not _REPO_RE.fullmatch(repo):
        raise ConfigError("--repo", f"{repo!r} is not OWNER/NAME")
    return repo or None


def _ask(stdin: TextIO, stdout: TextIO) -> bool:
    stdout.write("Write these changes? [y/N] ")
    stdout.flush()
    answer = stdin.readline()
    if not answer:
        stdout.write("\n")
    return answer.strip().lower() in {"y", "yes"}


def _write(root: Path, change: FileChange) -> None:
    assert change.content is not None
    dest = root / change.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    # newline="" keeps the user's line endings in the files we merge into.
    with open(dest, "w", encoding="utf-8", newline="") as f:
        f.write(change.content)
    if change.path.endswith(".py"):
        dest.chmod(0o755)


def run_init(
    options: argparse.Namespace | Mapping[str, Any] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Onboard the repository checked out at ``options.repo_dir``; returns the exit status.

    ``options`` is the parsed ``init`` namespace (see ``add_init_arguments``) or a mapping with
    the same keys. 0: written, or nothing to change, or dry run; 1: the user declined or a label
    could not be created; 2: bad settings (not a git checkout, bad branch name, broken markers).
    """
    stdin = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    yes = bool(_option(options, "yes", False))
    dry_run = bool(_option(options, "dry_run", False))
    base_branch = _option(options, "base_branch", None)
    bot_login = str(_option(options, "bot_login", "")).strip()
    try:
        if bot_login and not _LOGIN_RE.fullmatch(bot_login):
            raise ConfigError("--bot-login", f"{bot_login!r} is not a GitHub login (a user, or <app-slug>[bot])")
        root = _git_toplevel(Path(_option(options, "repo_dir", ".")))
        changes = plan_files(root, base_branch)
        repository = _resolve_repository(_option(options, "repo", None), root)
    except ConfigError as exc:
        out.write(f"otel-autoheal init: error: {exc}\n")
        return 2

    token = os.environ.get(ENV_TOKEN) or os.environ.get(ENV_GH_TOKEN) or ""
    api_url = os.environ.get(ENV_API_URL) or DEFAULT_API_URL
    client = LabelClient(api_url, repository, token) if token and repository else None
    to_create: list[Label] = []
    by_hand: list[Label] = []
    label_note = ""
    if client is not None:
        try:
            have = client.existing()
            to_create = [lab for lab in LABELS if lab.name.lower() not in have]
        except LabelError as exc:
            by_hand, label_note = list(LABELS), f"cannot manage labels through the API ({exc})"
    else:
        by_hand = list(LABELS)
        label_note = (
            f"no {ENV_TOKEN}/{ENV_GH_TOKEN} in the environment"
            if repository
            else f"unknown repository (pass --repo or set {ENV_REPOSITORY})"
        )

    out.write(f"otel-autoheal init: plan for {root}" + (f" ({repository})" if repository else "") + "\n")
    for change in changes:
        note = f"  ({change.note})" if change.note else ""
        out.write(f"  {change.action:<10} {change.path}{note}\n")
    if client is not None and not by_hand:
        for lab in LABELS:
            out.write(f"  {'create' if lab in to_create else 'exists':<10} label {lab.name}\n")
    else:
        out.write(f"  {'by hand':<10} {len(by_hand)} labels: {label_note}\n")
    out.write(_bot_login_line(bot_login, client, repository))

    writes = [c for c in changes if c.writes]
    if not writes and not to_create:
        out.write("Nothing to change: the repository is already onboarded.\n")
        _print_by_hand(out, by_hand, repository)
        return 0
    if dry_run:
        out.write("Dry run: nothing written.\n")
        _print_by_hand(out, by_hand, repository)
        return 0
    if not yes and not _ask(stdin, out):
        out.write("Aborted: nothing written.\n")
        return 1

    for change in writes:
        _write(root, change)
        out.write(f"wrote {change.path}\n")
    status = 0
    if client is not None:
        for lab in to_create:
            try:
                created = client.create(lab)
                out.write(f"{'created' if created else 'exists:'} label {lab.name}\n")
            except LabelError as exc:
                out.write(f"error: {exc}\n")
                by_hand.append(lab)
                status = 1
    _print_by_hand(out, by_hand, repository)
    out.write(NEXT_STEPS + "\n")
    return status


def _bot_login_line(explicit: str, client: LabelClient | None, repository: str | None) -> str:
    """The plan's line for the required AUTOHEAL_BOT_LOGIN variable: given, derived from the token, or unknown."""
    how, login = "from --bot-login", explicit
    if not login and client is not None:
        try:
            login, how = client.authenticated_login() or "", "the user of the token in the environment"
        except LabelError as exc:
            how = f"cannot read the token's user ({exc})"
        if not login and not how.startswith("cannot"):
            how = "the token may not read its user (a GitHub App's?)"
    repo = f" --repo {shlex.quote(repository)}" if repository else ""
    if not login:
        return (f"  {'by hand':<10} variable AUTOHEAL_BOT_LOGIN: unknown, {how or 'no token'}; set it to the login "
                f"otel-autoheal files issues as (re-run with --bot-login LOGIN, or: gh variable set "
                f"AUTOHEAL_BOT_LOGIN --body LOGIN{repo})\n")
    return (f"  {'by hand':<10} variable AUTOHEAL_BOT_LOGIN={login} ({how}): "
            f"gh variable set AUTOHEAL_BOT_LOGIN --body {shlex.quote(login)}{repo}\n")


def _print_by_hand(out: TextIO, labels: list[Label], repository: str | None) -> None:
    if not labels:
        return
    out.write("Create these labels (or re-run with GITHUB_TOKEN set), for example with the GitHub CLI:\n")
    out.writelines(f"  {line}\n" for line in gh_commands(labels, repository))
