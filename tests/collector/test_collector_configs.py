"""Every config in collector-config/ is accepted by the binary that will run it."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from collector_stack import COLLECTOR_CONFIG_DIR, Binaries, validate_collector_config

BASE = "otelcol-autoheal.yaml"

# config file -> (files merged for validation, extra environment)
COLLECTOR_CONFIGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    BASE: ((BASE,), {}),
    "otelcol-autoheal-auth.yaml": ((BASE, "otelcol-autoheal-auth.yaml"), {"OTELCOL_INGEST_TOKEN": "t0ken"}),
    "otelcol-autoheal-upstream-token.yaml": (
        (BASE, "otelcol-autoheal-upstream-token.yaml"),
        {"AUTOHEAL_INGEST_TOKEN": "t0ken"},
    ),
    "otelcol-loadbalancing.yaml": (
        (BASE, "otelcol-loadbalancing.yaml"),
        {"AUTOHEAL_BACKENDS": "[autoheal-1:4317, autoheal-2:4317]"},
    ),
    "otelcol-existing-pipeline-snippet.yaml": (("otelcol-existing-pipeline-snippet.yaml",), {}),
}
NOT_COLLECTOR_CONFIGS = {"builder-config.yaml", "jaeger.yaml"}


def test_every_config_file_is_covered() -> None:
    """A new YAML file in collector-config/ must be added to the validation table."""
    present = {p.name for p in COLLECTOR_CONFIG_DIR.glob("*.yaml")}
    assert present == set(COLLECTOR_CONFIGS) | NOT_COLLECTOR_CONFIGS


@pytest.mark.parametrize("name", sorted(COLLECTOR_CONFIGS))
def test_collector_config_validates(collector_binaries: Binaries, name: str) -> None:
    """`otelcol-autoheal validate` accepts the config (merged over the base when it is an overlay)."""
    files, env = COLLECTOR_CONFIGS[name]
    result = validate_collector_config(collector_binaries.otelcol, files, env)
    assert result.returncode == 0, result.stderr + result.stdout


def test_base_config_validates_with_deployment_env(collector_binaries: Binaries) -> None:
    """The container values (0.0.0.0 endpoints, CORS origin list, hostnames) are valid too."""
    env = {
        "OTELCOL_GRPC_ENDPOINT": "0.0.0.0:4317",
        "OTELCOL_HTTP_ENDPOINT": "0.0.0.0:4318",
        "OTELCOL_HEALTH_ENDPOINT": "0.0.0.0:13133",
        "OTELCOL_CORS_ALLOWED_ORIGINS": "[http://localhost:5173, https://*.example.com]",
        "AUTOHEAL_OTLP_ENDPOINT": "otel-autoheal:4317",
        "JAEGER_OTLP_ENDPOINT": "jaeger:4317",
        "OTELCOL_TAIL_DECISION_WAIT": "10s",
    }
    result = validate_collector_config(collector_binaries.otelcol, (BASE,), env)
    assert result.returncode == 0, result.stderr + result.stdout


def test_validate_rejects_a_broken_config(collector_binaries: Binaries, tmp_path: pathlib.Path) -> None:
    """Validation really checks: a pipeline naming a component the distribution lacks is refused."""
    broken = tmp_path / "broken.yaml"
    text = (COLLECTOR_CONFIG_DIR / BASE).read_text()
    broken.write_text(text.replace("processors: [memory_limiter, redaction, batch]", "processors: [groupbytrace]", 1))
    result = validate_collector_config(collector_binaries.otelcol, (str(broken),))
    assert result.returncode != 0
    assert "groupbytrace" in result.stderr + result.stdout


def test_jaeger_config_validates(collector_binaries: Binaries) -> None:
    """Jaeger (an otelcol-based binary) accepts collector-config/jaeger.yaml."""
    result = subprocess.run(
        [str(collector_binaries.jaeger), "validate", "--config", str(COLLECTOR_CONFIG_DIR / "jaeger.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_auth_overlay_refuses_an_empty_token(collector_binaries: Binaries) -> None:
    """With the auth overlay but no OTELCOL_INGEST_TOKEN the collector refuses to start, never runs open."""
    env = {k: v for k, v in os.environ.items() if k != "OTELCOL_INGEST_TOKEN"}
    result = subprocess.run(
        [
            str(collector_binaries.otelcol),
            "validate",
            "--config",
            str(COLLECTOR_CONFIG_DIR / BASE),
            "--config",
            str(COLLECTOR_CONFIG_DIR / "otelcol-autoheal-auth.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "no bearer token provided" in result.stderr + result.stdout
