"""Configuration: precedence, validation at load time with messages that name the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_autoheal.config import load_config
from otel_autoheal.errors import ConfigError


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
