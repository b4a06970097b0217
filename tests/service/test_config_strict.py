"""The one settings loader: strict types, errors that name the key and its source, provenance of every value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_autoheal.config import load_config, source_of
from otel_autoheal.errors import ConfigError, SinkConfigError
from otel_autoheal.sinks.github.config import GitHubConfig

REPO = Path(__file__).resolve().parents[2]
GITHUB = {"GITHUB_REPOSITORY": "octo/app", "GITHUB_TOKEN": "ghp_strictsecret"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_"))}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("toml", "env", "key", "problem"),
    [
        ("max_traces = true", {}, "max_traces", "expected an integer, got true"),
        ("preceding_logs = 2.9", {}, "preceding_logs", "expected an integer, got 2.9"),
        ("max_traces = '5'", {}, "max_traces", "expected an integer, got '5'"),
        ("trace_wait = false", {}, "trace_wait", "expected a number, got false"),
        ("intake_journal = 1", {}, "intake_journal", "expected true or false, got 1"),
        ("cors_origins = 'http://a'", {}, "cors_origins", "expected a list of strings"),
        ("log_level = 10", {}, "log_level", "expected a string, got 10"),
        ("[scrub]\nenabled = 'yes'", {}, "scrub.enabled", "expected true or false"),
        ("[scrub]\nallow = [1]", {}, "scrub.allow", "expected a list of strings"),
        ("preceding_logs = -1", {}, "preceding_logs", "must be 0 or more"),
        ("max_traces = 0", {}, "max_traces", "must be greater than 0"),
    ],
)
def test_file_values_must_have_the_settings_type(tmp_path, toml, env, key, problem):
    """A wrongly typed or out-of-range file value is refused naming its key, the problem and the file."""
    config_file = tmp_path / "autoheal.toml"
    config_file.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(config_file, env=env)
    assert info.value.key == key
    assert problem in info.value.problem and f"in {config_file}" in info.value.problem, str(info.value)


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        ({"AUTOHEAL_MAX_TRACES": "many"}, "AUTOHEAL_MAX_TRACES",
         "expected an integer, got 'many' (from the environment)"),
        ({"AUTOHEAL_MAX_TRACES": "2.5"}, "AUTOHEAL_MAX_TRACES", "expected an integer"),
        ({"AUTOHEAL_INTAKE_JOURNAL": "maybe"}, "AUTOHEAL_INTAKE_JOURNAL", "expected true or false"),
        ({"AUTOHEAL_TRACE_WAIT": "soon"}, "AUTOHEAL_TRACE_WAIT", "expected a number"),
        ({"AUTOHEAL_FALLBACK_LOG_WINDOW": "-1"}, "fallback_log_window",
         "must be 0 or more (set by AUTOHEAL_FALLBACK_LOG_WINDOW)"),
    ],
)
def test_env_garbage_names_the_variable(env, key, problem):
    """An env value that does not parse, or is out of range, is refused naming the variable it came from."""
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert info.value.key == key and problem in info.value.problem, str(info.value)


def test_env_strings_still_parse():
    """Env vars are text: numbers, true/false words, floats and comma lists are parsed into their types."""
    config = load_config(env={"AUTOHEAL_MAX_TRACES": "5", "AUTOHEAL_INTAKE_JOURNAL": "false",
                              "AUTOHEAL_TRACE_WAIT": "1.5", "AUTOHEAL_CORS_ORIGINS": "http://a, http://b",
                              "AUTOHEAL_PRECEDING_LOGS": " 7 "})
    assert (config.max_traces, config.intake_journal, config.trace_wait) == (5, False, 1.5)
    assert (config.cors_origins, config.preceding_logs) == (("http://a", "http://b"), 7)


def test_arguments_are_strict_too():
    """A Python argument of the wrong type is refused naming the setting and that it was an argument."""
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"max_traces": True})
    assert info.value.key == "max_traces" and "passed as an argument" in info.value.problem
    with pytest.raises(ConfigError) as unknown:
        load_config(env={}, overrides={"max_trace": 5})
    assert unknown.value.key == "max_trace"


@pytest.mark.parametrize(
    ("toml", "key", "suggestion"),
    [("max_trace = 5", "max_trace", "did you mean max_traces?"),
     ("[scrub]\nalow = []", "scrub.alow", "did you mean scrub.allow?")],
)
def test_unknown_file_keys_suggest_the_closest(tmp_path, toml, key, suggestion):
    """A misspelt key in the file is an error naming it, the file and the closest known key."""
    config_file = tmp_path / "c.toml"
    config_file.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(config_file, env={})
    assert info.value.key == key and suggestion in info.value.problem and str(config_file) in info.value.problem


def test_provenance_of_default_file_env_and_flag(tmp_path):
    """Each value records where it came from: the default, the file key, the env var or the flag."""
    config_file = tmp_path / "c.toml"
    config_file.write_text("trace_wait = 4.0\npreceding_logs = 5\nmax_traces = 9\n[scrub]\nallow = ['x']\n")
    config = load_config(config_file, env={"AUTOHEAL_PRECEDING_LOGS": "6", "AUTOHEAL_MAX_TRACES": "11"},
                         overrides={"max_traces": 12, "state_dir": str(tmp_path)},
                         flags={"state_dir": "--state"})
    assert (config.trace_wait, config.preceding_logs, config.max_traces) == (4.0, 6, 12)
    assert str(source_of(config, "trace_wait")) == f"{config_file}: trace_wait"
    assert str(source_of(config, "scrub.allow")) == f"{config_file}: scrub.allow"
    assert str(source_of(config, "preceding_logs")) == "env AUTOHEAL_PRECEDING_LOGS"
    assert str(source_of(config, "max_traces")) == "argument max_traces"
    assert str(source_of(config, "state_dir")) == "flag --state"
    assert source_of(config, "otlp_grpc").kind == "default" and source_of(config, "scrub.enabled").kind == "default"


def test_provenance_is_no_setting():
    """``Config.set_by`` is not a setting: no env var reads it and the file may not set it."""
    from otel_autoheal._envcheck import known_env_vars

    assert "AUTOHEAL_" + "SET_BY" not in known_env_vars()
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"set_by": {}})
    assert info.value.key == "set_by"


def test_serve_flag_errors_name_the_flag(tmp_path):
    """A bad value given on the command line is reported with the flag that set it."""
    result = subprocess.run([sys.executable, "-m", "otel_autoheal", "serve", "--trace-wait", "-1",
                             "--state", str(tmp_path / "s")], capture_output=True, text=True, timeout=60,
                            cwd=REPO, env=_clean_env())
    assert result.returncode == 2
    assert result.stderr.strip() == ("otel-autoheal: trace_wait: must be greater than 0, got -1.0 "
                                     "(set by flag --trace-wait)")
    assert not (tmp_path / "s").exists()


def test_github_settings_read_through_the_same_loader(tmp_path):
    """The [github] table is checked with the same strict types, errors name the file, and sources are recorded."""
    config_file = tmp_path / "autoheal.toml"
    config_file.write_text("[github]\nrepository = 'octo/app'\nwrites_per_minute = true\n")
    config = load_config(config_file, env={})
    assert source_of(config, "github").path == str(config_file)
    with pytest.raises(SinkConfigError) as info:
        GitHubConfig.for_service(config, {"GITHUB_TOKEN": "ghp_strictsecret"})
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == f"github.writes_per_minute: expected an integer, got true (in {config_file})"
    config_file.write_text("[github]\nrepository = 'octo/app'\nwrites_per_minute = 200\nlabls = ['x']\n")
    with pytest.raises(ConfigError) as typo:
        GitHubConfig.for_service(load_config(config_file, env={}), GITHUB)
    assert typo.value.key == "github.labls" and "did you mean github.labels?" in typo.value.problem
    config_file.write_text("[github]\nrepository = 'octo/app'\nwrites_per_minute = 200\n")
    with pytest.raises(ConfigError) as limit:
        GitHubConfig.for_service(load_config(config_file, env={}), GITHUB)
    assert limit.value.key == "github.writes_per_minute" and f"in {config_file}" in limit.value.problem
    config_file.write_text("[github]\nrepository = 'octo/app'\nmin_write_interval = 2\n")
    github = GitHubConfig.from_env({**GITHUB, "AUTOHEAL_GITHUB_LABELS": "bug"}, {"handoff_daily_budget": 1},
                                   file=load_config(config_file, env={}).github, file_path=str(config_file),
                                   use_gh_cli=False)
    assert github.min_write_interval == 2.0 and github.labels == ("bug",)
    assert str(source_of(github, "repository")) == "env GITHUB_REPOSITORY"
    assert str(source_of(github, "min_write_interval")) == f"{config_file}: github.min_write_interval"
    assert str(source_of(github, "labels")) == "env AUTOHEAL_GITHUB_LABELS"
    assert str(source_of(github, "handoff_daily_budget")) == "argument handoff_daily_budget"
    assert str(source_of(github, "token")) == "env GITHUB_TOKEN"
    assert source_of(github, "handoff").kind == "default"
    with pytest.raises(ConfigError) as env_bool:
        GitHubConfig.from_env({**GITHUB, "AUTOHEAL_GITHUB_HANDOFF_DRY_RUN": "perhaps"}, use_gh_cli=False)
    assert env_bool.value.key == "AUTOHEAL_GITHUB_HANDOFF_DRY_RUN" and "ghp_strictsecret" not in str(env_bool.value)


def test_config_command_shows_values_and_sources_with_tokens_masked(tmp_path):
    """``otel-autoheal config`` lists every setting with its source; token values never appear."""
    config_file = tmp_path / "c.toml"
    config_file.write_text("trace_wait = 4.0\ningest_tokens = {'tok_partner_secret' = 'untrusted'}\n"
                           "[github]\nrepository = 'octo/app'\n")
    env = _clean_env(AUTOHEAL_INGEST_TOKEN="tok_ingest_secret", AUTOHEAL_PRECEDING_LOGS="3",
                     GITHUB_TOKEN="ghp_strictsecret")
    result = subprocess.run([sys.executable, "-m", "otel_autoheal", "config", "--config", str(config_file),
                             "--state", str(tmp_path), "--json"], capture_output=True, text=True, timeout=60,
                            cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    for secret in ("tok_partner_secret", "tok_ingest_secret", "ghp_strictsecret"):
        assert secret not in result.stdout
    rows = json.loads(result.stdout)
    assert rows["trace_wait"] == {"value": 4.0, "source": f"{config_file}: trace_wait"}
    assert rows["preceding_logs"] == {"value": 3, "source": "env AUTOHEAL_PRECEDING_LOGS"}
    assert rows["state_dir"] == {"value": str(tmp_path), "source": "flag --state"}
    assert rows["ingest_token"] == {"value": "***", "source": "env AUTOHEAL_INGEST_TOKEN"}
    assert rows["ingest_tokens"]["value"] == {"***1": "untrusted"}
    assert rows["max_traces"] == {"value": 10000, "source": "default"}
    assert rows["github.repository"] == {"value": "octo/app", "source": f"{config_file}: github.repository"}
    assert rows["github.token"] == {"value": "***", "source": "env GITHUB_TOKEN"}
