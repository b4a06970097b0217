"""The one bounded LRU behind the pipeline's caches: bounds by count and cost, recency, oversize entries, pop."""

from __future__ import annotations

import pytest

from otel_autoheal._lru import BoundedLRU
from otel_autoheal.model import TraceData
from otel_autoheal.otlp import SpanData
from otel_autoheal.recent import RecentTraces


def _held(cache: BoundedLRU[str, str], *keys: str) -> list[str]:
    return [key for key in keys if key in cache]


def test_the_least_recently_put_entry_goes_beyond_the_count_bound() -> None:
    """A third entry in a cache of two forgets the first one put, and only it."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=2)
    for key in "abc":
        assert cache.put(key, key.upper(), 1)
    assert _held(cache, "a", "b", "c") == ["b", "c"]
    assert len(cache) == 2 and cache.bytes == 2
    assert cache.get("a") is None and cache.get("c") == "C"


def test_entries_are_forgotten_oldest_first_until_the_cost_bound_holds() -> None:
    """Costs add up to ``bytes``; an entry that overflows the bound forgets as many old ones as needed."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_bytes=10)
    cache.put("a", "1", 4)
    cache.put("b", "2", 4)
    assert cache.bytes == 8
    cache.put("c", "3", 4)
    assert _held(cache, "a", "b", "c") == ["b", "c"] and cache.bytes == 8
    cache.put("d", "4", 9)
    assert _held(cache, "a", "b", "c", "d") == ["d"] and cache.bytes == 9


def test_get_makes_an_entry_the_most_recent() -> None:
    """An entry read since is kept over one put after it; a miss changes nothing."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=2)
    cache.put("a", "A", 1)
    cache.put("b", "B", 1)
    assert cache.get("a") == "A"
    assert cache.get("zzz") is None
    cache.put("c", "C", 1)
    assert _held(cache, "a", "b", "c") == ["a", "c"]


def test_put_under_a_held_key_replaces_its_cost_and_recency() -> None:
    """Putting a key again counts its new cost only, and makes it the most recent."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=2, max_bytes=100)
    cache.put("a", "A", 30)
    cache.put("b", "B", 5)
    cache.put("a", "A2", 40)
    assert cache.bytes == 45 and len(cache) == 2
    cache.put("c", "C", 1)
    assert _held(cache, "a", "b", "c") == ["a", "c"] and cache.get("a") == "A2" and cache.bytes == 41


def test_an_entry_costing_more_than_the_bound_is_not_kept_and_forgets_nothing_else() -> None:
    """An oversize entry is refused (``put`` says so), the others stay, an older value under its key goes."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_bytes=10)
    cache.put("a", "A", 3)
    cache.put("b", "B", 3)
    assert not cache.put("huge", "H", 11)
    assert _held(cache, "a", "b", "huge") == ["a", "b"] and cache.bytes == 6
    assert not cache.put("a", "A2", 11)
    assert _held(cache, "a", "b") == ["b"] and cache.bytes == 3
    assert cache.put("exact", "E", 7) and cache.bytes == 10


def test_a_cache_of_no_entries_keeps_none() -> None:
    """``max_entries`` 0 holds nothing rather than failing on ``put``."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=0)
    assert not cache.put("a", "A", 0)
    assert len(cache) == 0 and cache.get("a") is None


def test_pop_removes_an_entry_and_gives_its_cost_back() -> None:
    """``pop`` returns the value once, frees its cost for new entries, and returns ``None`` for a miss."""
    cache: BoundedLRU[str, str] = BoundedLRU(max_bytes=10)
    cache.put("a", "A", 6)
    cache.put("b", "B", 4)
    assert cache.pop("a") == "A"
    assert cache.pop("a") is None and cache.pop("never") is None
    assert cache.bytes == 4 and len(cache) == 1
    cache.put("c", "C", 6)
    assert _held(cache, "a", "b", "c") == ["b", "c"] and cache.bytes == 10


def test_none_cannot_be_stored() -> None:
    """``None`` is what a miss returns, so storing it is refused loudly."""
    cache: BoundedLRU[str, str | None] = BoundedLRU()
    with pytest.raises(TypeError, match="None"):
        cache.put("a", None, 1)
    assert len(cache) == 0 and cache.bytes == 0


def _trace(trace_id: str, spans: int) -> TraceData:
    return TraceData(trace_id, {f"{i:016x}": SpanData(trace_id, f"{i:016x}", "", "n", "k", 0, 0, False)
                                for i in range(spans)})


def test_a_recent_trace_over_the_byte_bound_leaves_the_others_remembered() -> None:
    """A processed trace too large to remember by itself no longer empties the recent-trace cache."""
    recent = RecentTraces(max_traces=100, max_bytes=20_000, keep_logs=0)
    recent.remember(_trace("small", 2), [])
    held = recent.bytes
    assert len(recent) == 1 and 0 < held < 20_000
    recent.remember(_trace("huge", 1_000), [])
    assert len(recent) == 1 and recent.bytes == held
    assert recent.take("huge") is None
    assert recent.take("small") is not None and recent.bytes == 0
