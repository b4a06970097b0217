"""Configuration: precedence, validation at load time with messages that name the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_autoheal._envcheck import known_env_vars
from otel_autoheal.config import load_config
from otel_autoheal.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_precedence_flag_over_env_over_file(tmp_path):
    """An explicit override beats the env var, which beats the file, which beats the default."""
    config_file = tmp_path / "autoheal.toml"
    config_file.write_text('trace_wait = 7.0\npreceding_logs = 5\nmax_traces = 9\n')
    config = load_config(config_file, env={"AUTOHEAL_PRECEDING_LOGS": "6", "AUTOHEAL_MAX_TRACES": "11"},
                         overrides={"max_traces": 12})
    assert (config.trace_wait, config.preceding_logs, config.max_traces) == (7.0, 6, 12)
    assert load_config(env={}).otlp_grpc == "127.0.0.1:4317"


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("trace_wait = -1", {}, "trace_wait"),
        ("otlp_grpc = 'nope'", {}, "otlp_grpc"),
        ("unknown_thing = 1", {}, "unknown_thing"),
        ("[scrub]\nextra_patterns = { bad = '([' }", {}, "scrub.extra_patterns.bad"),
        ("trace_url_template = 'http://x/'", {}, "trace_url_template"),
        ("", {"AUTOHEAL_MAX_TRACES": "many"}, "AUTOHEAL_MAX_TRACES"),
        ("cors_origins = ['example.com']", {}, "cors_origins"),
        ("max_held_bytes = 0", {}, "max_held_bytes"),
        ("max_trace_bytes = 2048\nmax_held_bytes = 1024", {}, "max_trace_bytes"),
        ("", {"AUTOHEAL_MAX_TRACE_BYTES": "-1"}, "max_trace_bytes"),
        ('ingest_tokens = {"tok" = "admin"}', {}, "ingest_tokens"),
        ("ingest_tokens = 3", {}, "ingest_tokens"),
        ("", {"AUTOHEAL_INGEST_TOKENS": "tok=maybe"}, "AUTOHEAL_INGEST_TOKENS"),
        ("max_inflight_bytes = 1024", {}, "max_inflight_bytes"),
        ("", {"AUTOHEAL_MAX_INFLIGHT_BYTES": "-5"}, "max_inflight_bytes"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, toml, env, key):
    """Each invalid setting is refused with an error that starts with its key."""
    config_file = tmp_path / "c.toml"
    config_file.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(config_file, env=env)
    assert str(info.value).startswith(key), str(info.value)


def test_serve_refuses_bad_config_with_the_key(tmp_path):
    """``otel-autoheal serve`` exits 2 and prints the key of a bad setting."""
    config_file = tmp_path / "c.toml"
    config_file.write_text("max_request_bytes = 0\n")
    result = subprocess.run([sys.executable, "-m", "otel_autoheal", "serve", "--config", str(config_file),
                             "--state", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "max_request_bytes" in result.stderr


def _git_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True, cwd=REPO).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def test_every_autoheal_variable_the_project_mentions_is_known():
    """Every AUTOHEAL_* name in the repository (code, scripts, configs, docs) is in the known set, so none ever warns."""
    known = known_env_vars()
    mentioned: dict[str, str] = {}
    for path in _git_files():
        try:
            text = path.read_text(errors="ignore")
        except (IsADirectoryError, FileNotFoundError):
            continue
        for name in re.findall(r"\bAUTOHEAL_[A-Z0-9_]*[A-Z0-9]\b", text):
            mentioned.setdefault(name, str(path.relative_to(REPO)))
    unknown = {name: where for name, where in mentioned.items() if name not in known}
    assert unknown == {}
    from otel_autoheal.exporters._engine import ENV_EXPORTER_QUEUE_SIZE
    from otel_autoheal.sinks import ENV_SINK
    from otel_autoheal.sinks.github.config import ENV_KEYS

    assert {*ENV_KEYS.values(), ENV_EXPORTER_QUEUE_SIZE, ENV_SINK, "AUTOHEAL_TRACE_WAIT", "AUTOHEAL_PYTHON"} <= known


def _issues_stderr(tmp_path: Path, extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_"))}
    env.update(extra)
    result = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--state", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_unknown_autoheal_variable_warns_with_the_closest_key(tmp_path):
    """A normal environment gives no warning; a misspelt AUTOHEAL_* variable warns and names the intended one."""
    normal = {"AUTOHEAL_TRACE_WAIT": "5", "AUTOHEAL_GITHUB_LABELS": "x", "AUTOHEAL_SINK": "local",
              "AUTOHEAL_EXPORTER_QUEUE_SIZE": "10", "AUTOHEAL_EXPORT_TIMEOUT": "2", "AUTOHEAL_PYTHON": sys.executable,
              "AUTOHEAL_VENV": "/tmp/venv", "AUTOHEAL_REQUIRE_SERVICE": "1", "AUTOHEAL_CONFIG": ""}
    assert _issues_stderr(tmp_path, normal) == ""
    typo = "AUTOHEAL_TRACE_" + "WIAT"  # spelt apart so that the repository scan above does not see it
    stderr = _issues_stderr(tmp_path, {**normal, typo: "5"})
    assert stderr.strip().splitlines() == [
        f"otel-autoheal: warning: {typo} is not a setting otel-autoheal knows and is ignored; "
        "did you mean AUTOHEAL_TRACE_WAIT?"
    ]
