"""Settings, token handling and misconfiguration reports."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from gh_harness import Harness, fingerprint, wait_for
from otel_autoheal.errors import SinkConfigError
from otel_autoheal.sinks.github import GitHubConfig, GitHubSink, github_configured, offline_status
from otel_autoheal.state.sqlite import SQLiteStore
from tests.github_standin.server import GitHubStandin

BASE = {"GITHUB_REPOSITORY": "octo/app", "GITHUB_TOKEN": "ghp_abc123secret"}


def test_from_env_reads_documented_keys_and_sources() -> None:
    """Env keys map to typed fields; explicit overrides win; the token source is reported, not the token."""
    env = {
        **BASE,
        "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        "AUTOHEAL_GITHUB_LABELS": "bug, prod",
        "AUTOHEAL_GITHUB_WRITES_PER_MINUTE": "40",
        "AUTOHEAL_GITHUB_HANDOFF": "copilot",
        "AUTOHEAL_GITHUB_HANDOFF_DRY_RUN": "yes",
    }
    cfg = GitHubConfig.from_env(env, {"writes_per_minute": 20}, use_gh_cli=False)
    assert cfg.api_url == "https://ghe.example.com/api/v3"
    assert cfg.labels == ("bug", "prod") and cfg.writes_per_minute == 20
    assert cfg.handoff == "copilot" and cfg.handoff_dry_run is True
    assert cfg.token_source == "GITHUB_TOKEN"
    assert "ghp_abc123secret" not in repr(cfg) and "ghp_abc123secret" not in json.dumps(cfg.describe())
    gh = GitHubConfig.from_env({"GITHUB_REPOSITORY": "octo/app", "GH_TOKEN": "t0k"}, use_gh_cli=False)
    assert gh.token_source == "GH_TOKEN"
    assert github_configured(BASE) and not github_configured({})


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"GITHUB_TOKEN": "x"}, "GITHUB_REPOSITORY"),
        ({**BASE, "GITHUB_REPOSITORY": "no-slash"}, "GITHUB_REPOSITORY"),
        ({"GITHUB_REPOSITORY": "octo/app"}, "GITHUB_TOKEN"),
        ({**BASE, "GITHUB_API_URL": "ftp://x"}, "GITHUB_API_URL"),
        ({**BASE, "AUTOHEAL_GITHUB_WRITES_PER_MINUTE": "many"}, "AUTOHEAL_GITHUB_WRITES_PER_MINUTE"),
        ({**BASE, "AUTOHEAL_GITHUB_WRITES_PER_MINUTE": "200"}, "AUTOHEAL_GITHUB_WRITES_PER_MINUTE"),
        ({**BASE, "AUTOHEAL_GITHUB_HANDOFF": "robot"}, "AUTOHEAL_GITHUB_HANDOFF"),
        ({**BASE, "AUTOHEAL_GITHUB_LABELS": "x" * 51}, "AUTOHEAL_GITHUB_LABELS"),
    ],
)
def test_invalid_settings_name_the_key(env: dict[str, str], key: str) -> None:
    """Every validation error names the offending key and never contains the token."""
    with pytest.raises(SinkConfigError) as info:
        GitHubConfig.from_env(env, use_gh_cli=False)
    assert str(info.value).startswith(key + ":")
    assert "ghp_abc123secret" not in str(info.value)


def test_token_from_gh_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without GITHUB_TOKEN/GH_TOKEN the output of `gh auth token` is used."""
    gh = tmp_path / "gh"
    gh.write_text('#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo gho_fromcli && exit 0\nexit 1\n')
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    cfg = GitHubConfig.from_env({"GITHUB_REPOSITORY": "octo/app"})
    assert cfg.token == "gho_fromcli" and cfg.token_source == "gh auth token"


def test_token_never_reaches_logs_status_state_or_standin_log(
    github_standin: GitHubStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through filing, a 5xx, a 401 pause and status, the token appears in no output we produce."""
    caplog.set_level(logging.DEBUG)
    token = github_standin.token
    state = tmp_path / "state"
    store = SQLiteStore.in_dir(state)
    github_standin.fault("status", count=2, status=500)
    sink = GitHubSink(store, GitHubConfig.from_env(github_standin.env(), {"backoff_base": 0.1, "backoff_max": 0.5,
                                                                         "min_write_interval": 0.0}))
    h = Harness.__new__(Harness)
    h.standin, h.store, h.sink, h.sinks = github_standin, store, sink, [sink]
    h.emit(fingerprint("secret-check"))
    wait_for(lambda: sink.status()["issues_filed"] == 1, what="filing")
    statuses = [json.dumps(sink.status())]
    sink.close()
    bad = GitHubSink(store, GitHubConfig.from_env({**github_standin.env(), "GITHUB_TOKEN": token + "x"},
                                                  {"min_write_interval": 0.0}))
    wait_for(lambda: bad.status()["paused"], what="the 401 pause")
    statuses.append(json.dumps(bad.status()))
    assert "GITHUB_TOKEN" in bad.status()["paused"] and "401" in bad.status()["paused"]
    bad.close()
    store.close()
    standin_log = requests.get(f"{github_standin.api_url}/_standin/log", timeout=10).text
    files = b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())
    for text in [*statuses, caplog.text, standin_log]:
        assert token not in text
    assert token.encode() not in files


def test_unknown_repository_pauses_with_a_clear_message(github_standin: GitHubStandin, tmp_path: Path) -> None:
    """A repository the token cannot see is reported as a GITHUB_REPOSITORY problem and nothing is dropped."""
    store = SQLiteStore.in_dir(tmp_path)
    env = {**github_standin.env(), "GITHUB_REPOSITORY": "someone/else"}
    sink = GitHubSink(store, GitHubConfig.from_env(env, {"min_write_interval": 0.0}))
    try:
        h = Harness.__new__(Harness)
        h.standin, h.store, h.sink, h.sinks = github_standin, store, sink, []
        h.emit(fingerprint("nowhere"))
        paused = wait_for(lambda: sink.status()["paused"], what="the pause")
        assert paused.startswith("repository check: GITHUB_REPOSITORY") and "someone/else" in paused
        assert sink.status()["outbox"]["pending"] == 1
        offline = offline_status(SimpleNamespace(state_dir=str(tmp_path), github={}), env=env)
        assert offline["paused"] == paused and offline["outbox"]["pending"] == 1
        assert offline["repo"] == "someone/else" and github_standin.token not in json.dumps(offline)
    finally:
        sink.close()
        store.close()


def test_token_without_issue_write_permission_pauses_with_the_permission_needed(harness: Harness) -> None:
    """A plain 403 on create (read-only token) pauses writes and names the permission; work stays queued."""
    harness.standin.fault("forbidden", methods=["POST"], path_pattern=r"/issues$")
    harness.start()
    harness.emit(fingerprint("read-only"))
    paused = wait_for(lambda: harness.status()["paused"], what="the pause")
    assert "403" in paused and "Issues: read and write" in paused
    assert harness.status()["outbox"]["pending"] == 1
    assert len(harness.requests("POST", r"/issues$")) == 1  # not retried in a loop


def test_handle_never_blocks_while_github_hangs(harness: Harness) -> None:
    """With every GitHub request hanging, handle() keeps recording occurrences in the outbox."""
    harness.standin.fault("hang", seconds=60)
    harness.start(request_timeout=30.0)
    harness.emit(fingerprint("hang-0"))
    wait_for(lambda: harness.standin.in_flight >= 1, what="the worker to be stuck in a request")
    for i in range(1, 51):
        harness.emit(fingerprint(f"hang-{i}"))
    assert harness.status()["outbox"]["pending"] == 51
    assert harness.status()["occurrences_handled"] == 51


def test_config_file_table_with_token_command(tmp_path: Path) -> None:
    """The [github] table of autoheal.toml sets fields by name and may name a token command, never a token."""
    cmd = tmp_path / "print-token"
    cmd.write_text("#!/bin/sh\necho ghp_fromcommand\n")
    cmd.chmod(cmd.stat().st_mode | stat.S_IEXEC)
    table = {"repository": "octo/app", "token_command": str(cmd), "labels": ["prod"], "min_write_interval": 2,
             "handoff": "copilot"}
    cfg = GitHubConfig.from_env({}, file=table, use_gh_cli=False)
    assert (cfg.token, cfg.token_source) == ("ghp_fromcommand", "token_command")
    assert cfg.labels == ("prod",) and cfg.min_write_interval == 2 and cfg.handoff == "copilot"
    env_wins = GitHubConfig.from_env({**BASE, "AUTOHEAL_GITHUB_HANDOFF": "none"}, file=table, use_gh_cli=False)
    assert env_wins.token_source == "GITHUB_TOKEN" and env_wins.handoff == "none"
    for bad, key in [({"token": "x"}, "github.token"), ({"writes_per_minute": "lots"}, "github.writes_per_minute"),
                     ({"colour": "red"}, "github.colour"), ({"handoff_dry_run": 3}, "github.handoff_dry_run")]:
        with pytest.raises(SinkConfigError) as info:
            GitHubConfig.from_env(BASE, file={"repository": "octo/app", **bad}, use_gh_cli=False)
        assert str(info.value).startswith(key + ":")
