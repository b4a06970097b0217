"""One bounded least-recently-used mapping for the pipeline's caches (stack texts, parsed chains,
recent traces, parsed source maps): bounded by entry count and by a cost the caller gives per entry.

Pure functions of short values (the scrubber's, ``render.inline``'s) keep ``functools.lru_cache``:
it is in C, several times faster per hit, and safe from the intake threads.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["BoundedLRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """Values by key: at most ``max_entries`` of them, costing at most ``max_bytes`` together.

    - ``get`` returns the value and makes its entry the most recently used; a miss returns ``None``
      (so ``None`` cannot be stored: ``put`` raises ``TypeError``).
    - ``put`` makes the entry the most recent (replacing one under the same key), then forgets the
      least recently used entries until both bounds hold. The bounds are checked there only.
    - An entry costing more than ``max_bytes`` by itself (or any entry if ``max_entries`` < 1) is not
      kept, an older one under its key is dropped, and nothing else is forgotten: keeping it would
      empty the cache and then drop it anyway.
    - The cost is the caller's estimate (in bytes for our caches, ≥ 0), taken once at ``put``;
      ``bytes`` is the sum over the entries held.
    - Not thread-safe: use it from one thread, or under the caller's lock. ``len`` and ``bytes`` are
      single reads, fine from any thread (possibly a moment stale).
    """

    __slots__ = ("_costs", "_entries", "bytes", "max_bytes", "max_entries")

    def __init__(self, *, max_entries: int = sys.maxsize, max_bytes: int = sys.maxsize) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, V] = OrderedDict()
        # Apart from the values, so that a hit (the hot path) reads one dict entry and unpacks nothing.
        self._costs: dict[K, int] = {}
        #: Sum of the costs of the entries held.
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        """Whether ``key`` is held (its recency unchanged)."""
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value under ``key``, now the most recently used; ``None`` if there is none."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: K, value: V, cost: int) -> bool:
        """Hold ``value`` under ``key`` as the most recently used; whether it was kept (see the class)."""
        if value is None:
            raise TypeError("BoundedLRU cannot hold None: get returns None for a miss")
        entries, costs = self._entries, self._costs
        replaced = costs.pop(key, None)
        if replaced is not None:
            del entries[key]
            self.bytes -= replaced
        if cost > self.max_bytes or self.max_entries < 1:
            return False
        entries[key] = value
        costs[key] = cost
        held = self.bytes + cost
        # Ends with the new entry held: it fits both bounds by itself.
        while len(entries) > self.max_entries or held > self.max_bytes:
            old, _ = entries.popitem(last=False)
            held -= costs.pop(old)
        self.bytes = held
        return True

    def pop(self, key: K) -> V | None:
        """Remove and return the value under ``key`` (its cost given back); ``None`` if there is none."""
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= self._costs.pop(key)
        return found
