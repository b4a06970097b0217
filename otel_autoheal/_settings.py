"""The one settings loader: layers of raw values → strictly typed values, each with where it came from.

Used by the service's ``Config`` (``config.py``), the GitHub sink's ``GitHubConfig``
(``sinks/github/config.py``) and, through ``Config``, the in-process engine. Layers, lowest first:
the dataclass default < the config file < the environment < explicit flags or arguments.

Types are strict: a file (TOML) or an argument must already have the field's type (``true`` is not
an integer, ``2.9`` is not one either, ``"5"`` is not a number); only environment strings are parsed
(``"5"``, ``"true"``/``"off"``, ``"1.5"``, ``"a,b"`` for lists). Every error is
``ConfigError(key, problem)`` where ``key`` is the name as written (env var, file key, flag) and the
problem ends with where the value came from.

A small internal helper rather than pydantic-settings: measured on ``otel-autoheal issues``, importing
pydantic-settings and building the model adds ≈ 130 ms CPU to a ≈ 80 ms command; this module
imports in ≈ 3 ms (docs/architecture.md).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from otel_autoheal.errors import ConfigError

__all__ = [
    "DEFAULT",
    "Resolved",
    "SettingSource",
    "coerce",
    "fail",
    "is_secret",
    "reject_unknown",
    "resolve",
    "setting_types",
    "source_of",
]

SourceKind = Literal["default", "file", "env", "flag", "argument"]


@dataclass(frozen=True)
class SettingSource:
    """Where one setting's value came from."""

    #: ``default``, ``file``, ``env``, ``flag`` (command line) or ``argument`` (a Python call).
    kind: SourceKind = "default"
    #: The name as written: file key (``github.labels``), env var, flag (``--trace-wait``) or argument.
    name: str = ""
    #: The config file's path (``file`` only); for a default, what it is derived from, if anything.
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "default":
            return f"default ({self.path})" if self.path else "default"
        if self.kind == "file":
            return f"{self.path}: {self.name}"
        if self.kind == "env":
            return f"env {self.name}"
        return f"{self.kind} {self.name}"

    @property
    def origin(self) -> str:
        """The suffix errors end with: ``set in FILE``, ``set by AUTOHEAL_TRACE_WAIT``, ``set by --flag``."""
        if self.kind == "default":
            return "the default"
        if self.kind == "file":
            return f"set in {self.path or 'the config file'}"
        return f"set by {self.name}" if self.kind == "env" else f"set by {self.kind} {self.name}"

    @property
    def place(self) -> str:
        """Where, for an error already keyed by ``name``: ``in FILE``, ``from the environment``, …"""
        return {"default": "the default", "file": f"in {self.path or 'the config file'}",
                "env": "from the environment", "flag": "on the command line",
                "argument": "passed as an argument"}[self.kind]


#: The source of every value nobody set.
DEFAULT = SettingSource()


@dataclass(frozen=True)
class Resolved:
    """The settings that were given (by name, coerced) and the source of each."""

    values: dict[str, Any]
    sources: dict[str, SettingSource]


#: A parser for a setting whose type is not one of the plain ones: (value, source) → value.
Parser = Callable[[Any, SettingSource], Any]


def source_of(settings: object, key: str) -> SettingSource:
    """Where the value of ``key`` (``trace_wait``, ``scrub.allow``, ``github``) in ``settings`` came from.

    ``settings`` is a ``Config`` or ``GitHubConfig`` (their ``set_by``); a key not recorded is a default.
    """
    recorded: Mapping[str, SettingSource] = getattr(settings, "set_by", {})
    return recorded.get(key, DEFAULT)


def setting_types(cls: type, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Field name → resolved type hint of a settings dataclass, without ``skip``."""
    hints = typing.get_type_hints(cls)
    names = getattr(cls, "__dataclass_fields__", {})
    return {name: hints[name] for name in names if name not in set(skip)}


def is_secret(name: str) -> bool:
    """Settings whose values are never shown (in errors or ``otel-autoheal config``)."""
    return name.endswith(("token", "tokens"))


def fail(source: SettingSource, problem: str, error: type[ConfigError] = ConfigError) -> ConfigError:
    """The error for a bad value: keyed by the name as written, ending with where it came from."""
    return error(source.name, f"{problem} ({source.place})")


def reject_unknown(
    table: Mapping[str, Any], known: Iterable[str], *, prefix: str = "", path: str = "",
    what: str = "unknown setting", error: type[ConfigError] = ConfigError,
) -> None:
    """An unknown key in a config file table is an error naming the closest known key."""
    names = sorted(known)
    for key in table:
        if key in names:
            continue
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        where = f"in {path}; " if path else ""
        raise error(f"{prefix}{key}", f"{what}{hint} ({where}known: {', '.join(names)})")


def _shown(name: str, value: Any) -> str:
    if is_secret(name) and isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _from_text(hint: Any, raw: str, source: SettingSource) -> Any:
    """An environment string parsed into ``hint``."""
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        expected = {bool: "true or false (1/0, yes/no, on/off)", int: "an integer", float: "a number"}[hint]
        raise fail(source, f"expected {expected}, got {_shown(source.name, raw)}") from None
    if typing.get_origin(hint) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if hint is str:
        return raw
    raise fail(source, "cannot be set from the environment (use the config file)")


def coerce(hint: Any, value: Any, source: SettingSource) -> Any:
    """``value`` as ``hint`` (bool, int, float, str, tuple[str, ...], dict[str, str]); strict unless from env."""
    if source.kind == "env" and isinstance(value, str):
        return _from_text(hint, value, source)
    got = _shown(source.name, value)
    if isinstance(value, str) and hint in (bool, int, float) and source.kind == "file":
        got += "; TOML numbers and true/false are written without quotes"
    if hint is bool:
        if not isinstance(value, bool):
            raise fail(source, f"expected true or false, got {got}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(source, f"expected an integer, got {got}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(source, f"expected a number, got {got}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise fail(source, f"expected a string, got {got}")
        return value
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise fail(source, f"expected a list of strings, got {got}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise fail(source, f"expected a table of strings, got {got}")
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"no coercion for {hint!r} ({source.name})")  # a programming error: add a parser


def resolve(
    types: Mapping[str, Any],
    *,
    file: Mapping[str, Any] | None = None,
    file_path: str = "",
    file_prefix: str = "",
    env: Mapping[str, str] | None = None,
    env_names: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
    parsers: Mapping[str, Parser] | None = None,
    error: type[ConfigError] = ConfigError,
) -> Resolved:
    """Coerce every setting of ``types`` found in a layer; the highest layer that has it wins.

    ``file`` holds values by field name (keys not in ``types`` are the caller's to check);
    ``env_names`` maps a field to its variable (an empty value counts as unset); ``overrides`` (a
    ``None`` value counts as unset) are command-line flags when named in ``flags``, else arguments.
    """
    parsers = parsers or {}
    layers: list[tuple[Mapping[str, Any], Callable[[str], SettingSource]]] = []
    if file:
        layers.append((file, lambda name: SettingSource("file", f"{file_prefix}{name}", file_path)))
    if env is not None and env_names:
        given = {name: env[var] for name, var in env_names.items() if env.get(var, "") != ""}
        layers.append((given, lambda name: SettingSource("env", env_names[name])))
    if overrides:
        named = flags or {}
        layers.append(({k: v for k, v in overrides.items() if v is not None},
                       lambda name: SettingSource("flag", named[name]) if name in named
                       else SettingSource("argument", name)))
    values: dict[str, Any] = {}
    sources: dict[str, SettingSource] = {}
    for layer, source_of in layers:
        for name, raw in layer.items():
            if name not in types:
                continue
            source = source_of(name)
            try:
                parser = parsers.get(name)
                values[name] = parser(raw, source) if parser else coerce(types[name], raw, source)
            except ConfigError as exc:
                if error is ConfigError or isinstance(exc, error):
                    raise
                raise error(exc.key, exc.problem) from None
            sources[name] = source
    return Resolved(values, sources)
