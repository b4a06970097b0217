"""Stack parsing and fingerprints remembered across occurrences: a storm of one error is parsed once.

The chain and the key depend only on the (scrubbed) service name, exception type, message and
stack text, and on the in-app rules, fixed for the pipeline's life; so those four texts, whole,
are the cache key. A chain changed by source maps is never remembered: it depends on the release
and on the maps uploaded so far, not on the key alone. Bounded in entries and in bytes (each
entry is charged for its texts three times over, a generous estimate of its parsed frames); texts
longer than ``MAX_KEY_CHARS`` together are not kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from otel_autoheal._lru import BoundedLRU
from otel_autoheal.group.fingerprint import Fingerprint, compute_fingerprint
from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace import parse_stacktrace
from otel_autoheal.model import ExceptionRecord, ParsedException

__all__ = ["GroupingMemo"]

#: Distinct errors remembered.
MAX_ENTRIES = 1_024
#: Bytes the remembered errors may take (estimated).
MAX_BYTES = 4 * 1024 * 1024
#: Longest texts remembered (a storm's stack is a few KB; a huge one is parsed each time).
MAX_KEY_CHARS = 32_000

_Key = tuple[str, str, str, str]


@dataclass
class _Entry:
    chain: tuple[ParsedException, ...]
    type: str
    fingerprint: Fingerprint | None


class GroupingMemo:
    """``parse_stacktrace`` → source maps → ``compute_fingerprint`` for exception records, remembered."""

    def __init__(self, rules: InAppRules, resolve: Callable[[ExceptionRecord], list[ParsedException]],
                 max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._rules = rules
        self._resolve = resolve
        self._entries: BoundedLRU[_Key, _Entry] = BoundedLRU(max_entries=max_entries, max_bytes=max_bytes)

    @property
    def bytes(self) -> int:
        """Estimated bytes of the remembered errors."""
        return self._entries.bytes

    def __len__(self) -> int:
        return len(self._entries)

    def parse(self, record: ExceptionRecord) -> None:
        """Fill ``record.chain`` (source maps applied) and ``record.type`` (the stack's, if it had none)."""
        self._entry(record)

    def fingerprint(self, record: ExceptionRecord) -> Fingerprint:
        """``parse`` and return the record's group key."""
        entry = self._entry(record)
        if entry is not None:
            if entry.fingerprint is None:
                entry.fingerprint = compute_fingerprint(record.service_name, record.chain)
            return entry.fingerprint
        return compute_fingerprint(record.service_name, record.chain)

    def _entry(self, record: ExceptionRecord) -> _Entry | None:
        key = (record.service_name, record.type, record.message, record.stacktrace)
        entry = self._entries.get(key)
        if entry is not None:
            record.chain, record.type = list(entry.chain), entry.type
            return entry
        parsed = parse_stacktrace(record.stacktrace, record.type, record.message, self._rules)
        record.chain = parsed
        record.chain = self._resolve(record)  # minified JavaScript frames → original, before the key
        record.type = record.type or record.chain[0].type  # a log bridge that sent no type: the stack's
        if record.chain is not parsed:
            return None
        chars = sum(len(text) for text in key)
        if chars > MAX_KEY_CHARS:
            return None
        entry = _Entry(tuple(parsed), record.type, None)
        self._entries.put(key, entry, 3 * chars + 512)
        return entry
