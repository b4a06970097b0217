"""Settings: explicit argument > environment variable > default.

Imported on every CLI start, so it must stay stdlib-only and cheap.
"""

from __future__ import annotations

import os
import sys

#: Standard OpenTelemetry variables (spec: configuration/sdk-environment-variables.md).
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_EXPORTER_OTLP_COMPRESSION = "OTEL_EXPORTER_OTLP_COMPRESSION"

#: Seconds the host may be held at exit while errors are exported (default 2).
AUTOHEAL_EXPORT_TIMEOUT = "AUTOHEAL_EXPORT_TIMEOUT"
#: Directory for errors that could not be sent (default: <user cache dir>/otel-autoheal/spool).
AUTOHEAL_SPOOL_DIR = "AUTOHEAL_SPOOL_DIR"
#: Most spooled payloads kept (default 50); the oldest are dropped first.
AUTOHEAL_SPOOL_MAX_FILES = "AUTOHEAL_SPOOL_MAX_FILES"
#: Most bytes kept in the spool (default 5 MiB).
AUTOHEAL_SPOOL_MAX_BYTES = "AUTOHEAL_SPOOL_MAX_BYTES"
#: CLI mode: ``errors`` (default; export only failing runs) or ``full`` (export every run).
AUTOHEAL_CLI_MODE = "AUTOHEAL_CLI_MODE"
#: Lowest stdlib logging level kept as preceding logs (default INFO).
AUTOHEAL_LOG_LEVEL = "AUTOHEAL_LOG_LEVEL"
#: Most log records kept per run (default 100; older ones are dropped first).
AUTOHEAL_LOG_BUFFER = "AUTOHEAL_LOG_BUFFER"

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP_PROTOBUF = "http/protobuf"
MODE_ERRORS = "errors"
MODE_FULL = "full"

_DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
_DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _pick(explicit: object, env_name: str) -> str | None:
    if explicit is not None:
        return str(explicit)
    return _env(env_name)


def _float(explicit: float | None, env_name: str, default: float) -> float:
    raw = _pick(explicit, env_name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def _int(explicit: int | None, env_name: str, default: int) -> int:
    raw = _pick(explicit, env_name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def parse_key_values(raw: str | None) -> dict[str, str]:
    """Parse the W3C-baggage-like ``k=v,k2=v2`` format of OTEL_RESOURCE_ATTRIBUTES/HEADERS."""
    result: dict[str, str] = {}
    if not raw:
        return result
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            continue
        key = _unquote(key.strip())
        if key:
            result[key] = _unquote(value.strip())
    return result


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    from urllib.parse import unquote  # rare; keeps urllib out of every CLI start

    return unquote(text)


def _truthy(raw: str | None) -> bool:
    return raw is not None and raw.strip().lower() == "true"


def default_spool_dir() -> str:
    """The per-user cache directory, as platformdirs would pick it, without importing it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "otel-autoheal", "spool")


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


class Settings:
    """Resolved settings shared by the CLI and MCP integrations."""

    # A plain class: dataclasses imports inspect, ~6 ms on every CLI start.

    disabled: bool
    service_name: str
    service_version: str | None
    resource_attributes: dict[str, str]
    protocol: str
    traces_endpoint: str
    logs_endpoint: str
    grpc_endpoint: str
    headers: dict[str, str]
    compression: str | None
    export_timeout: float
    spool_dir: str
    spool_max_files: int
    spool_max_bytes: int
    mode: str
    log_level: int
    log_buffer: int

    def __init__(self, **values: object) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    def replace(self, **values: object) -> Settings:
        merged = dict(vars(self))
        merged.update(values)
        return Settings(**merged)


def resolve(
    *,
    source: str,
    default_service_name: str,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    disabled: bool | None = None,
    export_timeout: float | None = None,
    spool_dir: str | None = None,
    mode: str | None = None,
    log_level: int | str | None = None,
    log_buffer: int | None = None,
) -> Settings:
    """Resolve every setting once; never raises on bad environment values."""
    resource = parse_key_values(_env(OTEL_RESOURCE_ATTRIBUTES))
    name = service_name or _env(OTEL_SERVICE_NAME) or resource.get("service.name") or default_service_name
    version = service_version or resource.get("service.version")

    proto = (_pick(protocol, OTEL_EXPORTER_OTLP_PROTOCOL) or PROTOCOL_HTTP_PROTOBUF).lower()
    if proto not in (PROTOCOL_GRPC, PROTOCOL_HTTP_PROTOBUF):
        # http/json is not supported by the Python exporters either; protobuf is accepted everywhere.
        proto = PROTOCOL_HTTP_PROTOBUF
    base = _pick(endpoint, OTEL_EXPORTER_OTLP_ENDPOINT)
    if proto == PROTOCOL_GRPC:
        grpc_endpoint = base or _DEFAULT_GRPC_ENDPOINT
        traces = logs = ""
    else:
        grpc_endpoint = ""
        http_base = base or _DEFAULT_HTTP_ENDPOINT
        # Per-signal variables are full URLs (spec), the generic one is a base URL.
        traces = (None if endpoint else _env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)) or _join(http_base, "v1/traces")
        logs = (None if endpoint else _env(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)) or _join(http_base, "v1/logs")

    hdrs = dict(headers) if headers is not None else parse_key_values(_env(OTEL_EXPORTER_OTLP_HEADERS))
    compression = (_env(OTEL_EXPORTER_OTLP_COMPRESSION) or "").lower() or None
    if compression not in (None, "gzip"):
        compression = None

    raw_level = _pick(log_level, AUTOHEAL_LOG_LEVEL) or "INFO"
    level = _level(raw_level)

    chosen_mode = (_pick(mode, AUTOHEAL_CLI_MODE) or MODE_ERRORS).lower()
    if chosen_mode not in (MODE_ERRORS, MODE_FULL):
        chosen_mode = MODE_ERRORS

    is_disabled = disabled if disabled is not None else _truthy(_env(OTEL_SDK_DISABLED))
    resource["autoheal.source"] = source
    return Settings(
        disabled=is_disabled,
        service_name=name,
        service_version=version,
        resource_attributes=resource,
        protocol=proto,
        traces_endpoint=traces,
        logs_endpoint=logs,
        grpc_endpoint=grpc_endpoint,
        headers=hdrs,
        compression=compression,
        export_timeout=_float(export_timeout, AUTOHEAL_EXPORT_TIMEOUT, 2.0),
        spool_dir=_pick(spool_dir, AUTOHEAL_SPOOL_DIR) or default_spool_dir(),
        spool_max_files=_int(None, AUTOHEAL_SPOOL_MAX_FILES, 50),
        spool_max_bytes=_int(None, AUTOHEAL_SPOOL_MAX_BYTES, 5 * 1024 * 1024),
        mode=chosen_mode,
        log_level=level,
        log_buffer=_int(log_buffer, AUTOHEAL_LOG_BUFFER, 100),
    )


def resource_attributes(settings: Settings, code: BaseException | str | None) -> dict[str, object]:
    """The OpenTelemetry resource of a CLI run or an MCP server (without ``telemetry.sdk.*``).

    ``code``, the exception that failed or a file, decides the ``vcs.*`` revision (looked up only
    when given); ``OTEL_RESOURCE_ATTRIBUTES`` overrides everything but the resolved service name and version.
    """
    import platform

    attributes: dict[str, object] = {
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.pid": os.getpid(),
        "os.type": sys.platform,
    }
    if code is not None:
        from ._source_context import vcs_attributes

        attributes.update(vcs_attributes(code, settings.resource_attributes))
    attributes.update(settings.resource_attributes)
    attributes["service.name"] = settings.service_name
    if settings.service_version:
        attributes["service.version"] = settings.service_version
    return attributes


_LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "INFO": 20, "DEBUG": 10, "NOTSET": 0}


def _level(raw: int | str) -> int:
    if isinstance(raw, int):
        return raw
    text = raw.strip().upper()
    if text.isdigit():
        return int(text)
    return _LEVELS.get(text, 20)
