"""Service configuration: a TOML file, ``AUTOHEAL_*`` env vars and command-line flags.

Precedence: explicit flag > env var > file > default. Every field documents its default, and
``load_config`` validates everything at start-up with errors that name the offending key.

Example ``autoheal.toml``::

    otlp_grpc = "127.0.0.1:4317"
    trace_wait = 3.0
    [scrub]
    extra_patterns = { internal_ticket = "TKT-[0-9]{6}" }
    [github]            # read by the GitHub sink
    repository = "acme/shop"
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from otel_autoheal.errors import ConfigError
from otel_autoheal.scrub import compile_pattern

__all__ = ["ENV_PREFIX", "Config", "ScrubConfig", "default_state_dir", "load_config", "parse_hostport"]

#: Every field can be set as ``AUTOHEAL_<FIELD NAME IN CAPS>`` (e.g. ``AUTOHEAL_TRACE_WAIT=5``).
ENV_PREFIX = "AUTOHEAL_"
#: The config file may also be given by this env var.
ENV_CONFIG_FILE = "AUTOHEAL_CONFIG"


def default_state_dir() -> str:
    from platformdirs import user_data_dir

    return user_data_dir("otel-autoheal", appauthor=False)


@dataclass(frozen=True)
class ScrubConfig:
    """Secret scrubbing; on by default."""

    #: Scrub secrets before anything is stored or rendered. Default: true.
    enabled: bool = True
    #: Extra ``name = "regex"`` patterns (RE2 syntax); matches become ``[redacted:name]``. Default: none.
    extra_patterns: dict[str, str] = field(default_factory=dict)
    #: Literal values or attribute keys never redacted (false positives). Default: none.
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Settings of ``otel-autoheal serve``."""

    #: OTLP/gRPC listen address. Default: 127.0.0.1:4317 (what OTel SDKs send to).
    otlp_grpc: str = "127.0.0.1:4317"
    #: OTLP/HTTP listen address (also /healthz and /metrics). Default: 127.0.0.1:4318.
    otlp_http: str = "127.0.0.1:4318"
    #: Directory of the SQLite state. Default: the user's data dir (e.g. ~/.local/share/otel-autoheal).
    state_dir: str = ""
    #: Seconds of silence after which a trace is complete and processed. Default: 3.
    trace_wait: float = 3.0
    #: Traces with an error held at once (traces without one are bounded by max_held_bytes only); beyond it
    #: the oldest is processed early (counted as an eviction). Default: 10000.
    max_traces: int = 10_000
    #: Spans + logs kept per trace; beyond it ordinary records are dropped (errors are kept). Default: 5000.
    max_records_per_trace: int = 5_000
    #: Largest request body accepted, before and after decompression, in bytes. Default: 8 MiB.
    max_request_bytes: int = 8 * 1024 * 1024
    #: Estimated bytes one trace may hold while it is assembled; beyond it ordinary records are
    #: dropped and errors kept with long values truncated (a trace whose errors alone reach it is
    #: processed at once, later parts merged as late data). Default: 4 MiB.
    max_trace_bytes: int = 4 * 1024 * 1024
    #: Estimated bytes held in total: traces being assembled or waiting for the pipeline, trace-less
    #: logs (up to 1/8) and the recent-trace cache for late data (up to 1/4). Beyond it the oldest
    #: traces are processed early; when finished traces alone fill it, receivers answer 503/UNAVAILABLE.
    #: Peak RSS at the defaults ≈ 60 MB (interpreter, grpcio, protobuf, SQLite) + this (≈ 80 MB
    #: with allocator slack) + one 8 MiB request being decoded (≈ 25 MB) + one trace in the pipeline
    #: (≤ 8 MiB) ≈ 175 MB, leaving ≈ 125 MB for request bodies in flight (README, "Memory").
    #: Default: 64 MiB.
    max_held_bytes: int = 64 * 1024 * 1024
    #: Request body bytes held at once across both receivers: being received over HTTP, or read
    #: from gRPC, until the request is answered (decoding included). A request that would pass it
    #: is refused retryably (HTTP 503 + Retry-After, gRPC UNAVAILABLE) and its body let go; OTLP
    #: senders retry. At least max_request_bytes; small requests share it. Default: 0, meaning
    #: max_request_bytes (each maximum-size request in flight costs ≈ 30 MB more peak RSS).
    max_inflight_bytes: int = 0
    #: Log records shown before each exception. Default: 50.
    preceding_logs: int = 50
    #: Without logs in the trace, use trace-less logs of the same service.instance.id this many
    #: seconds before the error. Default: 60.
    fallback_log_window: float = 60.0
    #: When set, requests need ``Authorization: Bearer <token>``. Default: empty (no auth).
    ingest_token: str = ""
    #: Further ingest tokens, each with the provenance of what it sends: ``{"<token>" = "trusted"}``
    #: or ``"untrusted"`` (e.g. a partner's or a browser bundle's token). Any of them (or
    #: ``ingest_token``, which means trusted) then authenticates a request; a browser request
    #: (``Origin`` header) is untrusted whatever its token. Env: ``token=trusted,token2=untrusted``.
    #: Default: none.
    ingest_tokens: dict[str, str] = field(default_factory=dict)
    #: When set, ``GET /metrics`` needs ``Authorization: Bearer <metrics_token>``. Default: empty (open).
    metrics_token: str = ""
    #: Seconds a client has to send a request's headers, counted from the connection (or the
    #: request's first byte on a kept-alive connection); then the connection is closed (slowloris).
    #: Default: 10.
    http_header_timeout: float = 10.0
    #: Seconds a client has to send a request's body once its headers arrived; then it gets 408 and
    #: the connection is closed (a body shorter than its Content-Length). OTLP exporters give up
    #: after 10 s (SDKs) or 30 s (Collector). Default: 30.
    http_body_timeout: float = 30.0
    #: Seconds an idle kept-alive HTTP connection stays open between requests. Default: 15.
    http_keepalive_timeout: float = 15.0
    #: HTTP connections served at once; a request on a further connection gets 503 and the
    #: connection is closed. Default: 1000.
    http_max_connections: int = 1000
    #: Origins allowed to POST OTLP/JSON from browsers (CORS), e.g. ``http://localhost:5173``. Default: none.
    cors_origins: tuple[str, ...] = ()
    #: Link to a trace viewer; ``{trace_id}`` is replaced. Default: local Jaeger.
    trace_url_template: str = "http://localhost:16686/trace/{trace_id}"
    #: Path or module prefixes that are application code (overrides the built-in library rules).
    in_app_include: tuple[str, ...] = ()
    #: Path or module prefixes that are library code. Default: none beyond the built-in rules.
    in_app_exclude: tuple[str, ...] = ()
    #: Write failed spans and exception logs to the state database before acknowledging them, so
    #: that a crash (SIGKILL, power loss) never loses an acknowledged error; costs some ingest
    #: throughput (see the README). Default: true.
    intake_journal: bool = True
    #: Longest a request waits for its errors to be committed to the intake journal; past it (or
    #: when the write fails) the request is refused with 503 + Retry-After / UNAVAILABLE and the
    #: sender retries: nothing is acknowledged that is not durable. Keep it below the senders'
    #: export timeout (the Collector's is 5 s). Default: 2.
    journal_timeout: float = 2.0
    #: Traces waiting for the pipeline before receivers answer 503/UNAVAILABLE. Default: 10000.
    max_pending_traces: int = 10_000
    #: Secret scrubbing.
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    #: Raw ``[github]`` table, validated by the GitHub sink.
    github: dict[str, Any] = field(default_factory=dict)
    #: Log level of the service's own logs. Default: INFO.
    log_level: str = "INFO"


_HOSTPORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):(?P<port>\d{1,5})$")


def parse_hostport(key: str, value: str) -> tuple[str, int]:
    match = _HOSTPORT.match(value.strip())
    if not match or not 0 <= int(match.group("port")) <= 65535:
        raise ConfigError(key, f"expected HOST:PORT (e.g. 127.0.0.1:4317), got {value!r}")
    return match.group("host").strip("[]") or "0.0.0.0", int(match.group("port"))


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, (list, tuple)):
                return tuple(str(v) for v in value)
            raise ValueError
        if isinstance(default, str):
            if not isinstance(value, (str, int, float)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"invalid value {value!r} (expected {type(default).__name__})") from None
    return value


def _token_sources(key: str, value: Any) -> dict[str, str]:
    """``ingest_tokens``: a table ``{token = verdict}`` or, from the environment, ``token=verdict,…``."""
    if isinstance(value, str):
        pairs = [item.strip().rpartition("=") for item in value.split(",") if item.strip()]
        value = {token.strip(): verdict.strip() for token, _, verdict in pairs}
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'expected a table of "<token>" = "trusted" | "untrusted"')
    out: dict[str, str] = {}
    for token, verdict in value.items():
        if not str(token).strip():
            raise ConfigError(key, "a token is empty")
        if verdict not in ("trusted", "untrusted"):
            raise ConfigError(key, f'the verdict for a token must be "trusted" or "untrusted", got {verdict!r}')
        out[str(token).strip()] = str(verdict)
    return out


def _apply(base: Config, values: Mapping[str, Any], origin: str) -> Config:
    known = {f.name: f for f in fields(Config)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if origin == ENV_PREFIX:
            if key == "ingest_tokens":
                changes[key] = _token_sources(ENV_PREFIX + key.upper(), value)
            elif key not in ("scrub", "github"):
                changes[key] = _coerce(ENV_PREFIX + key.upper(), value, getattr(Config(), key))
            continue
        if key not in known:
            raise ConfigError(f"{origin}{key}", f"unknown setting (known: {', '.join(sorted(known))})")
        default = getattr(Config(), key)
        if key == "scrub":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}scrub", "expected a table")
            scrub_known = {f.name for f in fields(ScrubConfig)}
            for sub in value:
                if sub not in scrub_known:
                    raise ConfigError(f"{origin}scrub.{sub}", f"unknown setting (known: {', '.join(sorted(scrub_known))})")
            patterns = value.get("extra_patterns", {})
            if not isinstance(patterns, Mapping):
                raise ConfigError(f"{origin}scrub.extra_patterns", "expected a table of name = \"regex\"")
            for name, pattern in patterns.items():
                try:
                    compile_pattern(str(pattern))
                except ValueError as exc:
                    raise ConfigError(f"{origin}scrub.extra_patterns.{name}", f"invalid regex: {exc}") from None
            changes["scrub"] = ScrubConfig(
                enabled=_coerce(f"{origin}scrub.enabled", value.get("enabled", True), True),
                extra_patterns={str(k): str(v) for k, v in patterns.items()},
                allow=_coerce(f"{origin}scrub.allow", value.get("allow", ()), ()),
            )
        elif key == "ingest_tokens":
            changes[key] = _token_sources(f"{origin}{key}", value)
        elif key == "github":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}github", "expected a table")
            changes["github"] = dict(value)
        else:
            changes[key] = _coerce(f"{origin}{key}", value, default)
    return replace(base, **changes)


def _validate(config: Config) -> Config:
    parse_hostport("otlp_grpc", config.otlp_grpc)
    parse_hostport("otlp_http", config.otlp_http)
    positive = {
        "trace_wait": config.trace_wait, "max_traces": config.max_traces,
        "max_records_per_trace": config.max_records_per_trace, "max_request_bytes": config.max_request_bytes,
        "max_pending_traces": config.max_pending_traces, "journal_timeout": config.journal_timeout, "http_header_timeout": config.http_header_timeout,
        "http_body_timeout": config.http_body_timeout, "http_keepalive_timeout": config.http_keepalive_timeout,
        "http_max_connections": config.http_max_connections, "max_trace_bytes": config.max_trace_bytes,
        "max_held_bytes": config.max_held_bytes,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(key, f"must be greater than 0, got {value}")
    if not math.isfinite(config.journal_timeout):
        raise ConfigError("journal_timeout", f"must be a finite number of seconds, got {config.journal_timeout}")
    if config.max_inflight_bytes < 0:
        raise ConfigError("max_inflight_bytes", f"must be 0 (= max_request_bytes) or more, got {config.max_inflight_bytes}")
    if 0 < config.max_inflight_bytes < config.max_request_bytes:
        raise ConfigError("max_inflight_bytes", f"must be at least max_request_bytes ({config.max_request_bytes}) "
                                                f"or 0, got {config.max_inflight_bytes}")
    if config.max_trace_bytes > config.max_held_bytes:
        raise ConfigError("max_trace_bytes", f"must not exceed max_held_bytes ({config.max_held_bytes}), "
                                             f"got {config.max_trace_bytes}")
    if config.preceding_logs < 0:
        raise ConfigError("preceding_logs", "must be 0 or more")
    if config.fallback_log_window < 0:
        raise ConfigError("fallback_log_window", "must be 0 or more")
    if config.trace_url_template and "{trace_id}" not in config.trace_url_template:
        raise ConfigError("trace_url_template", "must contain {trace_id}")
    for origin in config.cors_origins:
        if origin != "*" and not re.match(r"^https?://", origin):
            raise ConfigError("cors_origins", f"origin {origin!r} must start with http:// or https://")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    if not config.state_dir:
        config = replace(config, state_dir=default_state_dir())
    return config


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from file, environment and explicit overrides, then validate it."""
    env = os.environ if env is None else env
    config = Config()
    path = path or env.get(ENV_CONFIG_FILE) or None
    if path:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
        config = _apply(config, data, "")
    from_env: dict[str, Any] = {}
    for f in fields(Config):
        if f.name in ("scrub", "github"):
            continue
        name = ENV_PREFIX + f.name.upper()
        if name in env and env[name] != "":
            from_env[f.name] = env[name]
    config = _apply(config, from_env, ENV_PREFIX)
    if overrides:
        config = _apply(config, {k: v for k, v in overrides.items() if v is not None}, "--")
    return _validate(config)


def state_path(config: Config) -> Path:
    return Path(config.state_dir).expanduser()
