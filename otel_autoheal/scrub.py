"""The scrubber: removes secrets from text and attribute maps before anything is stored or rendered.

Values are replaced, never deleted, and each replacement names what it was
(``[redacted:github_token]``), so an issue still shows *that* a value was there.
Usable on its own: ``Scrubber().text(s)`` / ``Scrubber().value(obj)``.

The rules live in ``scrub_rules.toml`` (shared byte for byte with the Python instrumentation,
which runs the same engine, ``_scrub_engine.py``). The service compiles them with google-re2, so
scrubbing takes time linear in the text whatever the text is; texts beyond the rule file's
``max_text_chars`` are cut with a visible note before scrubbing.

Every text that passes through here also loses its NUL characters (U+0000, replaced by U+FFFD),
also with scrubbing turned off: PostgreSQL cannot store them in text, and the scrubber is what
intake and the pipeline (before the grouping key) run on every sender-chosen text, so both stores
receive the same text and the same error gets the same fingerprint whichever store is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import re2  # type: ignore[import-not-found,import-untyped,unused-ignore]

from otel_autoheal._scrub_engine import Engine, luhn_valid

__all__ = ["NUL_REPLACEMENT", "Scrubber", "compile_pattern", "luhn_valid"]


def compile_pattern(pattern: str) -> None:
    """Check that ``pattern`` compiles under RE2 (the engine of ``[scrub] extra_patterns``); raise ValueError."""
    try:
        re2.compile(pattern.encode())
    except re2.error as exc:
        raise ValueError(f"not an RE2 regex (no lookaround or backreferences): {exc}") from None


#: Values scrubbed once are remembered (up to this many, each of at most ``_CACHED_CHARS``).
_CACHED_VALUES = 4096
_CACHED_CHARS = 1_000
#: What a NUL character in sender text becomes (the Unicode replacement character).
NUL_REPLACEMENT = "\ufffd"


def _nul_free(value: Any) -> Any:
    """``value`` with NUL replaced in every string, map key included (other values as they are)."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {_nul_free(k): _nul_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nul_free(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_nul_free(v) for v in value)
    return value


def _nul_free_keys(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    if not any("\x00" in k for k in attributes):
        return attributes
    return {k.replace("\x00", NUL_REPLACEMENT): v for k, v in attributes.items()}


class Scrubber:
    """Replaces secrets in strings and nested attribute values.

    ``extra_patterns`` maps a name to an RE2 regex (the whole match is replaced by
    ``[redacted:<name>]``); ``allow`` lists literal values or key names never redacted (for false
    positives in your data).
    """

    def __init__(
        self,
        extra_patterns: Mapping[str, str] | None = None,
        allow: Iterable[str] = (),
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._engine = Engine(regex=re2, extra_patterns=extra_patterns, allow=allow)
        # The same short values (resource and route attributes, types, recurring messages) are
        # scrubbed again for every occurrence, at intake and in the pipeline: remember them.
        self._text_cached = functools.lru_cache(maxsize=_CACHED_VALUES)(self._engine.text)
        self._value_cached = functools.lru_cache(maxsize=_CACHED_VALUES)(self._engine.value)

    @property
    def engine(self) -> str:
        """The regex engine in use: always "re2" in the service."""
        return self._engine.engine

    def text(self, value: str) -> str:
        """Return ``value`` with every recognised secret replaced by ``[redacted:<kind>]`` (and NUL by U+FFFD)."""
        if "\x00" in value:
            value = value.replace("\x00", NUL_REPLACEMENT)
        if not self.enabled:
            return value
        return self._text_cached(value) if len(value) <= _CACHED_CHARS else self._engine.text(value)

    def is_secret_key(self, key: str) -> bool:
        """Whether values under ``key`` are secrets ("db.password", "X-Api-Key", "session_id")."""
        return self._engine.is_secret_name(key)

    def value(self, value: Any, key: str = "") -> Any:
        """Scrub a nested value; values under secret-looking keys are replaced whole (NUL: as ``text``)."""
        value = _nul_free(value)
        if not self.enabled:
            return value
        if isinstance(value, str) and len(value) <= _CACHED_CHARS:
            return self._value_cached(value, key)
        return self._engine.value(value, key)

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Scrub an attribute map: keys are kept (NUL replaced as in ``text``), values scrubbed."""
        return {k: self.value(v, k) for k, v in _nul_free_keys(attributes).items()}

    def argv(self, args: Sequence[str]) -> list[str]:
        """Scrub an argument vector: ``--password x``, ``--token=x``, ``mysql -pX``, ``curl -u u:p``."""
        return self._engine.argv(args) if self.enabled else list(args)
