"""docker-compose.yml and Dockerfile: valid Compose, and consistent with collector-config/.

Docker cannot run on the CI machines, so these tests check the files statically: the Compose
Specification schema (as shipped in the pinned npm package dclint, installed by `npm ci` in this
folder), the mounts, ports, endpoints and env vars against the configs, and the compose environment
against the real binaries' `validate`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from collector_stack import COLLECTOR_CONFIG_DIR, REPO_ROOT, Binaries

HERE = pathlib.Path(__file__).resolve().parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DCLINT_DIR = HERE / "node_modules" / "dclint"
SCHEMA_FILE = DCLINT_DIR / "schemas" / "compose.schema.json"

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}")


@pytest.fixture(scope="module")
def npm_tools() -> pathlib.Path:
    """Install this folder's pinned npm packages when missing; fail (never skip) when that fails."""
    if not SCHEMA_FILE.is_file():
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"npm ci in {HERE} failed:\n{proc.stdout}\n{proc.stderr}"
    assert SCHEMA_FILE.is_file(), f"{SCHEMA_FILE} missing after npm ci"
    return DCLINT_DIR


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _interpolate(value: str) -> str:
    """Compose-style ${VAR:-default} with an empty environment, as on a machine without overrides."""
    return _COMPOSE_VAR.sub(lambda m: m.group(3) or "", value)


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in env]
        return {k: (None if v is None else _interpolate(v)) for k, v in pairs}
    return {k: (None if v is None else _interpolate(str(v))) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, pathlib.Path]:
    """Container path -> repo file for every read-only bind mount of a repo file."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = REPO_ROOT / source
    return mounts


def _config_of(service: dict[str, Any]) -> pathlib.Path:
    (arg,) = [a for a in service["command"] if a.startswith("--config=")]
    return _mounts(service)[arg.removeprefix("--config=")]


def _port(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> published host port."""
    out = {}
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        out[int(parts[-1])] = int(parts[-2])
    return out


def _env_refs(config: pathlib.Path) -> dict[str, str | None]:
    return {m.group(1): m.group(3) if m.group(2) else None for m in _ENV_REF.finditer(config.read_text())}


def test_compose_matches_the_compose_specification(npm_tools: pathlib.Path, compose: dict[str, Any]) -> None:
    """docker-compose.yml validates against the Compose Specification JSON schema."""
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema.get("title") == "Compose Specification"
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_schema_check_can_fail(npm_tools: pathlib.Path, compose: dict[str, Any]) -> None:
    """The schema really constrains: a misspelt service key is rejected."""
    schema = json.loads(SCHEMA_FILE.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["otelcol"]["helthcheck"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_dclint_reports_no_errors(npm_tools: pathlib.Path) -> None:
    """dclint (schema + lint rules) finds no errors; its style warnings are not enforced."""
    proc = subprocess.run(
        [str(npm_tools.parent / ".bin" / "dclint"), "--quiet", "--color", "false", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mounted_files_exist_and_are_the_configs_run(compose: dict[str, Any]) -> None:
    """Every bind-mounted file is in the repository and is the file the service's --config names."""
    services = compose["services"]
    for name in ("otelcol", "jaeger"):
        for target, source in _mounts(services[name]).items():
            assert source.is_file(), f"{name}: {source} (mounted at {target}) is not in the repository"
            assert source.parent == COLLECTOR_CONFIG_DIR
    assert _config_of(services["otelcol"]).name == "otelcol-autoheal.yaml"
    assert _config_of(services["jaeger"]).name == "jaeger.yaml"


@pytest.mark.parametrize("name", ["otelcol", "jaeger"])
def test_env_vars_match_the_config(compose: dict[str, Any], name: str) -> None:
    """Compose sets only variables the config reads, and every variable without a default."""
    service = compose["services"][name]
    refs = _env_refs(_config_of(service))
    env = _environment(service)
    unknown = set(env) - set(refs)
    assert not unknown, f"{name}: compose sets variables its config never reads: {sorted(unknown)}"
    required = {k for k, default in refs.items() if default is None}
    assert required <= set(env), f"{name}: config needs {sorted(required - set(env))}"
    # In a container, listening on the loopback default would make the service unreachable.
    for key, default in refs.items():
        if key.endswith("_ENDPOINT") and default and default.startswith("127.0.0.1") and key in env:
            value = env[key] or ""
            assert not value.startswith("127.0.0.1"), f"{name}: {key}={value}"


def test_ports_and_endpoints_line_up(compose: dict[str, Any]) -> None:
    """Published ports, exporter endpoints and health checks point at the ports services listen on."""
    services = compose["services"]
    col, jae, ah = (_environment(services[n]) for n in ("otelcol", "jaeger", "otel-autoheal"))

    # Apps reach the collector on the standard OTLP ports.
    published = _published(services["otelcol"])
    assert published[_port(col["OTELCOL_GRPC_ENDPOINT"] or "")] == 4317
    assert published[_port(col["OTELCOL_HTTP_ENDPOINT"] or "")] == 4318

    # collector -> Jaeger and collector -> otel-autoheal use service names and the listening ports.
    assert col["JAEGER_OTLP_ENDPOINT"] == f"jaeger:{_port(jae['JAEGER_OTLP_GRPC_ENDPOINT'] or '')}"
    command = services["otel-autoheal"]["command"]
    grpc_listen = command[command.index("--otlp-grpc") + 1]
    http_listen = command[command.index("--otlp-http") + 1]
    assert grpc_listen.startswith("0.0.0.0:") and http_listen.startswith("0.0.0.0:")
    assert col["AUTOHEAL_OTLP_ENDPOINT"] == f"otel-autoheal:{_port(grpc_listen)}"

    # The Jaeger UI is published where the README says, and health checks probe the real ports.
    assert _published(services["jaeger"])[_port(jae["JAEGER_QUERY_HTTP"] or "")] == 16686
    jaeger_check = " ".join(services["jaeger"]["healthcheck"]["test"])
    assert f":{_port(jae['JAEGER_HEALTH_ENDPOINT'] or '')}/status" in jaeger_check
    autoheal_check = " ".join(services["otel-autoheal"]["healthcheck"]["test"])
    assert f":{_port(http_listen)}/healthz" in autoheal_check

    # The service gets the GitHub settings and keeps its state in a named volume.
    assert {"GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_API_URL"} <= set(ah)
    state = command[command.index("--state") + 1]
    volume_name = next(v.split(":")[0] for v in services["otel-autoheal"]["volumes"] if v.endswith(state))
    assert volume_name in compose["volumes"]


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", value.strip())
    assert match, value
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]


def test_trace_wait_outlasts_the_sampling_decision(compose: dict[str, Any]) -> None:
    """otel-autoheal waits longer than the collector holds spans, so logs and spans meet."""
    services = compose["services"]
    refs = _env_refs(_config_of(services["otelcol"]))
    decision = _environment(services["otelcol"]).get("OTELCOL_TAIL_DECISION_WAIT") or refs[
        "OTELCOL_TAIL_DECISION_WAIT"
    ]
    batch = refs["OTELCOL_BATCH_TIMEOUT"]
    trace_wait = _environment(services["otel-autoheal"])["AUTOHEAL_TRACE_WAIT"]
    assert decision and batch and trace_wait
    assert _seconds(trace_wait) > _seconds(decision) + _seconds(batch) + 1


def test_images_match_the_built_versions(compose: dict[str, Any]) -> None:
    """The collector and Jaeger images are the releases the tests build from source."""
    services = compose["services"]
    manifest = (COLLECTOR_CONFIG_DIR / "builder-config.yaml").read_text()
    contrib = re.search(r"opentelemetry-collector-contrib/\S+ v(\d+\.\d+\.\d+)", manifest)
    assert contrib is not None
    assert services["otelcol"]["image"] == f"otel/opentelemetry-collector-contrib:{contrib.group(1)}"
    # Jaeger's Go module publishes v2.x releases under v1.x tags: v1.76.0 is Jaeger 2.13.0.
    tools = (COLLECTOR_CONFIG_DIR / "jaeger-tools" / "go.mod").read_text()
    assert re.search(r"github.com/jaegertracing/jaeger v1\.76\.0\b", tools)
    assert services["jaeger"]["image"] == "jaegertracing/jaeger:2.13.0"


def test_compose_environment_passes_validate(compose: dict[str, Any], collector_binaries: Binaries) -> None:
    """The collector and Jaeger configs validate with exactly the environment compose gives them."""
    checks = [("otelcol", collector_binaries.otelcol), ("jaeger", collector_binaries.jaeger)]
    for name, binary in checks:
        service = compose["services"][name]
        env = {k: v for k, v in _environment(service).items() if v is not None}
        proc = subprocess.run(
            [str(binary), "validate", "--config", str(_config_of(service))],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr}{proc.stdout}"


def test_dockerfile_runs_the_service_as_documented(compose: dict[str, Any]) -> None:
    """The image runs `otel-autoheal serve` on 0.0.0.0:4317/4318 as a non-root user with a /healthz check."""
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    instructions = [
        line.split(None, 1) for line in text.replace("\\\n", " ").splitlines() if line and not line.startswith("#")
    ]
    last = {k.upper(): v for k, v in (i for i in instructions if len(i) == 2)}
    assert json.loads(last["ENTRYPOINT"]) == ["otel-autoheal"]
    cmd = json.loads(last["CMD"])
    assert cmd == compose["services"]["otel-autoheal"]["command"]
    user = last["USER"].split(":")[0]
    assert user not in ("root", "0")
    assert "/healthz" in last["HEALTHCHECK"] and ":4318/" in last["HEALTHCHECK"]
    copied = [shlex.split(v)[:-1] for k, v in instructions if k.upper() == "COPY" and "--from" not in v]
    for sources in copied:
        for source in sources:
            assert (REPO_ROOT / source).exists() or source in ("README.md",), f"COPY {source}: not in repo"
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for source in (s for sources in copied for s in sources):
        assert f"!{source.rstrip('/')}" in [i.rstrip("/") for i in ignored], f"{source} excluded by .dockerignore"


SCALE_FILE = REPO_ROOT / "docker-compose.scale.yml"


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's ``!reset`` tag (an override that clears the base value)."""


def _construct_tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)


for _tag in ("!reset", "!override"):  # Compose's merge tags: the value replaces the base file's
    _ComposeLoader.add_constructor(_tag, _construct_tagged)


@pytest.fixture(scope="module")
def scale() -> dict[str, Any]:
    data = yaml.load(SCALE_FILE.read_text(), Loader=_ComposeLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(data, dict)
    return data


def test_scale_overlay_matches_the_compose_specification(npm_tools: pathlib.Path, scale: dict[str, Any]) -> None:
    """docker-compose.scale.yml validates against the Compose Specification JSON schema."""
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(scale, schema, cls=jsonschema.Draft7Validator)


def test_scale_overlay_is_consistent_with_the_base_and_the_configs(
    compose: dict[str, Any], scale: dict[str, Any], collector_binaries: Binaries
) -> None:
    """Replicas, backend names, the database URL, mounts and env vars of the overlay line up."""
    base, over = compose["services"], scale["services"]
    replicas = over["otel-autoheal"]["deploy"]["replicas"]
    # One published host port per replica (a range), on loopback, to the port the service listens on.
    (published,) = over["otel-autoheal"]["ports"]
    host, ports, target = published.rsplit(":", 2)
    first, last = (int(p) for p in ports.split("-"))
    assert replicas >= 2 and host == "127.0.0.1" and last - first + 1 == replicas
    # The collector lists every replica by the name Compose gives it, on the port it listens on.
    command = base["otel-autoheal"]["command"]
    assert int(target) == _port(command[command.index("--otlp-http") + 1])
    grpc_port = _port(command[command.index("--otlp-grpc") + 1])
    col_env = {**_environment(base["otelcol"]), **_environment(over["otelcol"])}
    backends = [b.strip() for b in (col_env["AUTOHEAL_BACKENDS"] or "").strip("[]").split(",")]
    assert backends == [f"{compose['name']}-otel-autoheal-{i}:{grpc_port}" for i in range(1, replicas + 1)]
    # The instances reach the overlay's PostgreSQL with its user, password and database.
    (url,) = [v for k, v in _environment(over["otel-autoheal"]).items() if k == "AUTOHEAL_DATABASE_URL"]
    pg = _environment(over["postgres"])
    assert url == f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    assert re.fullmatch(r"postgres:\d+", over["postgres"]["image"])
    assert "autoheal-db" in scale["volumes"]
    # Every --config is mounted from the repository, and the merged configs read every variable set.
    mounts = {**_mounts(base["otelcol"]), **_mounts(over["otelcol"])}
    configs = [mounts[a.removeprefix("--config=")] for a in over["otelcol"]["command"]]
    assert [c.name for c in configs] == ["otelcol-autoheal.yaml", "otelcol-loadbalancing.yaml"]
    refs: dict[str, str | None] = {}
    for config in configs:
        refs.update(_env_refs(config))
    assert not set(col_env) - set(refs), sorted(set(col_env) - set(refs))
    argv = [str(collector_binaries.otelcol), "validate"] + [f"--config={c}" for c in configs]
    proc = subprocess.run(argv, env={**os.environ, **{k: v for k, v in col_env.items() if v is not None}},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
