"""A text → text function remembered for long inputs, bounded in bytes (oldest forgotten first)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TextMemo"]


class TextMemo:
    """``fn(text)`` remembered by the whole text; texts longer than ``max_chars`` are never kept.

    For pure functions only (the scrubber on stack traces: a storm of one error sends the same
    stack again and again). Not thread-safe: one per pipeline thread.
    """

    def __init__(self, fn: Callable[[str], str], max_bytes: int, max_chars: int) -> None:
        self._fn = fn
        self._max_bytes = max_bytes
        self._max_chars = max_chars
        self._entries: OrderedDict[str, str] = OrderedDict()
        #: Characters held, keys and values (a value equal to its key is the same string, counted twice).
        self.bytes = 0

    def __call__(self, text: str) -> str:
        found = self._entries.get(text)
        if found is not None:
            self._entries.move_to_end(text)
            return found
        result = self._fn(text)
        if len(text) <= self._max_chars:
            self._entries[text] = result
            self.bytes += len(text) + len(result)
            while self.bytes > self._max_bytes:
                old, value = self._entries.popitem(last=False)
                self.bytes -= len(old) + len(value)
        return result
