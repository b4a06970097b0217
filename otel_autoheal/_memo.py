"""A text → text function remembered for long inputs, bounded in bytes (least recently used forgotten first)."""

from __future__ import annotations

from collections.abc import Callable

from otel_autoheal._lru import BoundedLRU

__all__ = ["TextMemo"]


class TextMemo:
    """``fn(text)`` remembered by the whole text; texts longer than ``max_chars`` are never kept.

    For pure functions only (the scrubber on stack traces: a storm of one error sends the same
    stack again and again). Not thread-safe: one per pipeline thread.
    """

    def __init__(self, fn: Callable[[str], str], max_bytes: int, max_chars: int) -> None:
        self._fn = fn
        self._max_chars = max_chars
        self._entries: BoundedLRU[str, str] = BoundedLRU(max_bytes=max_bytes)

    @property
    def bytes(self) -> int:
        """Characters held, keys and values (a value equal to its key is the same string, counted twice)."""
        return self._entries.bytes

    def __call__(self, text: str) -> str:
        found = self._entries.get(text)
        if found is not None:
            return found
        result = self._fn(text)
        if len(text) <= self._max_chars:
            self._entries.put(text, result, len(text) + len(result))
        return result
