"""Service configuration: a TOML file, ``AUTOHEAL_*`` env vars and command-line flags.

Precedence: explicit flag > env var > file > default. Every field documents its default, and
``load_config`` validates everything at start-up with errors that name the offending key and where
its value came from. Values are read by the one settings loader (``_settings.py``, shared with the
GitHub sink): strict types in the file and in arguments, parsed text from the environment, and the
source of every value in ``Config.set_by`` (``source_of``, ``otel-autoheal config``).

Example ``autoheal.toml``::

    otlp_grpc = "127.0.0.1:4317"
    trace_wait = 3.0
    [scrub]
    extra_patterns = { internal_ticket = "TKT-[0-9]{6}" }
    [github]            # read by the GitHub sink
    repository = "acme/shop"
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from otel_autoheal._settings import (
    SettingSource,
    fail,
    is_secret,
    reject_unknown,
    resolve,
    setting_types,
    source_of,
)
from otel_autoheal.errors import ConfigError
from otel_autoheal.scrub import compile_pattern

__all__ = [
    "ENV_PREFIX",
    "Config",
    "ScrubConfig",
    "SettingSource",
    "default_state_dir",
    "load_config",
    "masked",
    "parse_hostport",
    "shown_settings",
    "source_of",
]

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

    #: Where each value came from (``source_of``), filled by ``load_config``; not a setting.
    #: Default: empty, meaning every value is its default.
    set_by: dict[str, SettingSource] = field(default_factory=dict, compare=False, repr=False)
    #: OTLP/gRPC listen address. Default: 127.0.0.1:4317 (what OTel SDKs send to).
    otlp_grpc: str = "127.0.0.1:4317"
    #: OTLP/HTTP listen address (also /healthz and /metrics). Default: 127.0.0.1:4318.
    otlp_http: str = "127.0.0.1:4318"
    #: Directory of the SQLite state. Default: the user's data dir (e.g. ~/.local/share/otel-autoheal).
    state_dir: str = ""
    #: ``postgresql://user:password@host:port/db``: keep the state in PostgreSQL, shared by several
    #: instances, instead of SQLite in ``state_dir`` (needs ``otel-autoheal[postgres]``; the GitHub
    #: sink shares it too). Default: empty (SQLite).
    database_url: str = ""
    #: Seconds after which an error still in the intake journal is processed again: its first
    #: processing failed (e.g. the database was unreachable). At least twice ``trace_wait``. Default: 60.
    journal_retry_after: float = 60.0
    #: This instance's name in a shared database (its intake journal is replayed by it, or by another
    #: instance once it has been silent for 30 s). Default: host name and OTLP/gRPC address.
    instance_id: str = ""
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
    #: Serve the web page (groups, their history and their way to a fix). Default: true.
    ui: bool = True
    #: Where the web page listens, HOST:PORT (``--ui``). Default: empty, meaning on the OTLP/HTTP
    #: address (http://127.0.0.1:4318/).
    ui_address: str = ""
    #: When set, the web page and its API need this token (login form → cookie, or
    #: ``Authorization: Bearer``). Required when the page's address is not loopback: without it
    #: the page answers 403 there. Default: empty.
    ui_token: str = ""
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
    #: Directory with a deployed build's bundles and their ``.map`` files (e.g. the web server's
    #: static root): JavaScript frames whose file is not among the uploaded maps are looked up
    #: here by URL path. Default: empty (only ``otel-autoheal sourcemaps upload``\ed maps).
    sourcemaps_dir: str = ""
    #: GitHub repository of each service's code, for links from in-app frames to the failing line:
    #: ``{checkout = "acme/shop"}``, or ``"acme/mono/services/checkout"`` when the service's paths
    #: start in that folder. Wins over the ``vcs.repository.url.full`` a sender claims. Env:
    #: ``checkout=acme/shop,cart=acme/cart``. Default: none (only ``vcs.*`` resource attributes link).
    code_repositories: dict[str, str] = field(default_factory=dict)
    #: The Git tag a ``service.version`` was built from (``{version}`` is replaced, e.g.
    #: ``v{version}``), used for links when the resource names no ``vcs.ref.head.revision`` and
    #: ``code_repositories`` names the service's repository. Empty: no links without a revision.
    #: Default: ``{version}``.
    code_tag_template: str = "{version}"
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


def _token_sources(value: Any, source: SettingSource) -> dict[str, str]:
    """``ingest_tokens``: a table ``{token = verdict}`` or, from the environment, ``token=verdict,…``."""
    if isinstance(value, str) and source.kind == "env":
        pairs = [item.strip().rpartition("=") for item in value.split(",") if item.strip()]
        value = {token.strip(): verdict.strip() for token, _, verdict in pairs}
    if not isinstance(value, Mapping):
        raise fail(source, 'expected a table of "<token>" = "trusted" | "untrusted"')
    out: dict[str, str] = {}
    for token, verdict in value.items():
        if not str(token).strip():
            raise fail(source, "a token is empty")
        if verdict not in ("trusted", "untrusted"):
            raise fail(source, f'the verdict for a token must be "trusted" or "untrusted", got {verdict!r}')
        out[str(token).strip()] = str(verdict)
    return out


#: ``owner/repo`` or ``owner/repo/sub/folder``, as GitHub spells owners and repositories.
_CODE_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}(?:/[A-Za-z0-9._@+-]{1,100}){0,20}$")


def _code_repositories(value: Any, source: SettingSource) -> dict[str, str]:
    """``code_repositories``: a table ``{service = "owner/repo[/folder]"}`` or, from the environment, ``service=owner/repo,…``."""
    if isinstance(value, str) and source.kind == "env":
        pairs = [item.strip().partition("=") for item in value.split(",") if item.strip()]
        value = {service.strip(): repo.strip() for service, _, repo in pairs}
    if not isinstance(value, Mapping):
        raise fail(source, 'expected a table of "<service.name>" = "owner/repo"')
    out: dict[str, str] = {}
    for service, repository in value.items():
        if not str(service).strip():
            raise fail(source, "a service name is empty")
        if not isinstance(repository, str):
            raise fail(replace(source, name=f"{source.name}.{service}"), f"expected a string, got {repository!r}")
        repository = repository.strip().strip("/")
        if not _CODE_REPOSITORY.match(repository) or "/../" in f"/{repository}/" or "/./" in f"/{repository}/":
            raise fail(replace(source, name=f"{source.name}.{service}"),
                       f'expected "owner/repo" or "owner/repo/folder", got {repository!r}')
        out[str(service).strip()] = repository
    return out


def _patterns(value: Any, source: SettingSource) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise fail(source, 'expected a table of name = "regex"')
    for name, pattern in value.items():
        if not isinstance(pattern, str):
            raise fail(replace(source, name=f"{source.name}.{name}"), f"expected a regex string, got {pattern!r}")
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise fail(replace(source, name=f"{source.name}.{name}"), f"invalid regex: {exc}") from None
    return {str(name): pattern for name, pattern in value.items()}


#: Settings that are tables with their own rules, only read from the file; and what is no setting.
_TABLES = ("scrub", "github")
_NOT_SETTINGS = ("set_by",)


@functools.cache
def _types() -> dict[str, Any]:
    return setting_types(Config, skip=(*_TABLES, *_NOT_SETTINGS))


def _scrub(value: Any, path: str) -> tuple[ScrubConfig, dict[str, SettingSource]]:
    if not isinstance(value, Mapping):
        raise fail(SettingSource("file", "scrub", path), "expected a table")
    reject_unknown(value, [f.name for f in fields(ScrubConfig)], prefix="scrub.", path=path)
    got = resolve(setting_types(ScrubConfig), file=value, file_path=path, file_prefix="scrub.",
                  parsers={"extra_patterns": _patterns})
    return ScrubConfig(**got.values), {f"scrub.{name}": source for name, source in got.sources.items()}


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None


def _validate(config: Config) -> Config:
    parse_hostport("otlp_grpc", config.otlp_grpc)
    parse_hostport("otlp_http", config.otlp_http)
    positive = {
        "trace_wait": config.trace_wait, "max_traces": config.max_traces,
        "max_records_per_trace": config.max_records_per_trace, "max_request_bytes": config.max_request_bytes,
        "max_pending_traces": config.max_pending_traces, "journal_timeout": config.journal_timeout, "http_header_timeout": config.http_header_timeout,
        "http_body_timeout": config.http_body_timeout, "http_keepalive_timeout": config.http_keepalive_timeout,
        "http_max_connections": config.http_max_connections, "max_trace_bytes": config.max_trace_bytes,
        "max_held_bytes": config.max_held_bytes, "journal_retry_after": config.journal_retry_after,
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
    if config.code_tag_template and config.code_tag_template.count("{version}") != 1:
        raise ConfigError("code_tag_template", f"must contain {{version}} once (or be empty), got {config.code_tag_template!r}")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    if config.database_url and not config.database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("database_url", "must be a postgresql:// URL (leave it empty for SQLite in state_dir)")
    if not config.state_dir:
        config = replace(config, state_dir=default_state_dir(),
                         set_by={**config.set_by, "state_dir": SettingSource("default", path="the user's data dir")})
    return config


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration from file, environment and explicit overrides, then validate it.

    ``overrides`` are keyed by field; those named in ``flags`` (field → ``--flag``) came from the
    command line, the others are Python arguments. ``Config.set_by`` records every value's source.
    """
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG_FILE) or None
    file_path = str(path) if path else ""
    table = _read(file_path) if file_path else {}
    types = _types()
    reject_unknown(table, [*types, *_TABLES], path=file_path)
    unknown = [name for name in overrides or {} if name not in types]
    if unknown:
        raise ConfigError(unknown[0], "unknown setting")
    got = resolve(types, file={k: v for k, v in table.items() if k not in _TABLES}, file_path=file_path,
                  env=env, env_names={name: ENV_PREFIX + name.upper() for name in types},
                  overrides=overrides, flags=flags, parsers={"ingest_tokens": _token_sources,
                                                                   "code_repositories": _code_repositories})
    values: dict[str, Any] = dict(got.values)
    set_by = dict(got.sources)
    if "scrub" in table:
        values["scrub"], scrub_sources = _scrub(table["scrub"], file_path)
        set_by.update(scrub_sources)
    if "github" in table:  # validated by the GitHub sink, with the same loader, when it is used
        github_source = SettingSource("file", "github", file_path)
        if not isinstance(table["github"], Mapping):
            raise fail(github_source, "expected a table")
        values["github"] = dict(table["github"])
        set_by["github"] = github_source
    config = Config(**values, set_by=set_by)
    try:
        return _validate(config)
    except ConfigError as exc:
        source = source_of(config, exc.key)
        if source.kind == "default":
            raise
        raise ConfigError(exc.key, f"{exc.problem} ({source.origin})") from None


def state_path(config: Config) -> Path:
    return Path(config.state_dir).expanduser()


def shown_settings(config: Config) -> dict[str, tuple[Any, SettingSource]]:
    """Every setting (``scrub.*`` one by one, ``github`` as its table) → (value, source); secrets masked."""
    out: dict[str, tuple[Any, SettingSource]] = {}
    for f in fields(Config):
        if f.name in _NOT_SETTINGS:
            continue
        value = getattr(config, f.name)
        if f.name == "scrub":
            for sub in fields(ScrubConfig):
                out[f"scrub.{sub.name}"] = (getattr(value, sub.name), source_of(config, f"scrub.{sub.name}"))
            continue
        out[f.name] = (masked(f.name, value), source_of(config, f.name))
    return out


def masked(name: str, value: Any) -> Any:
    """A secret setting's value as shown: ``***`` for each token, the rest unchanged."""
    if not is_secret(name) or not value:
        return value
    if isinstance(value, Mapping):
        return {f"***{i + 1}": verdict for i, verdict in enumerate(value.values())}
    return "***"
