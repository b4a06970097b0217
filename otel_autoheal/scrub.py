"""The scrubber: removes secrets from text and attribute maps before anything is stored or rendered.

Values are replaced, never deleted, and each replacement names what it was
(``[redacted:github_token]``), so an issue still shows *that* a value was there.
Usable on its own: ``Scrubber().text(s)`` / ``Scrubber().value(obj)``.

The rules live in ``scrub_rules.toml`` (shared byte for byte with the Python instrumentation,
which runs the same engine, ``_scrub_engine.py``). The service compiles them with google-re2, so
scrubbing takes time linear in the text whatever the text is; texts beyond the rule file's
``max_text_chars`` are cut with a visible note before scrubbing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import re2  # type: ignore[import-not-found,import-untyped,unused-ignore]

from otel_autoheal._scrub_engine import Engine, luhn_valid

__all__ = ["Scrubber", "compile_pattern", "luhn_valid"]


def compile_pattern(pattern: str) -> None:
    """Check that ``pattern`` compiles under RE2 (the engine of ``[scrub] extra_patterns``); raise ValueError."""
    try:
        re2.compile(pattern.encode())
    except re2.error as exc:
        raise ValueError(f"not an RE2 regex (no lookaround or backreferences): {exc}") from None


#: Values scrubbed once are remembered (up to this many, each of at most ``_CACHED_CHARS``).
_CACHED_VALUES = 4096
_CACHED_CHARS = 1_000

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
        """Return ``value`` with every recognised secret replaced by ``[redacted:<kind>]``."""
        if not self.enabled:
            return value
        return self._text_cached(value) if len(value) <= _CACHED_CHARS else self._engine.text(value)

    def is_secret_key(self, key: str) -> bool:
        """Whether values under ``key`` are secrets ("db.password", "X-Api-Key", "session_id")."""
        return self._engine.is_secret_name(key)

    def value(self, value: Any, key: str = "") -> Any:
        """Scrub a nested value; values under secret-looking keys are replaced whole."""
        if not self.enabled:
            return value
        if isinstance(value, str) and len(value) <= _CACHED_CHARS:
            return self._value_cached(value, key)
        return self._engine.value(value, key)

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Scrub an attribute map: keys are kept, values scrubbed."""
        return {k: self.value(v, k) for k, v in attributes.items()}

    def argv(self, args: Sequence[str]) -> list[str]:
        """Scrub an argument vector: ``--password x``, ``--token=x``, ``mysql -pX``, ``curl -u u:p``."""
        return self._engine.argv(args) if self.enabled else list(args)
