"""An in-memory sink for tests, ours and users'."""

from __future__ import annotations

import threading
from typing import Any

from otel_autoheal.model import GroupUpdate

__all__ = ["MemorySink"]


class MemorySink:
    """Remembers every update it receives; thread-safe. Use ``updates`` or ``new_groups`` in asserts."""

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._updates: list[GroupUpdate] = []
        self.closed = False

    @property
    def updates(self) -> list[GroupUpdate]:
        with self._lock:
            return list(self._updates)

    @property
    def new_groups(self) -> list[GroupUpdate]:
        return [u for u in self.updates if u.is_new]

    def handle(self, update: GroupUpdate) -> None:
        with self._lock:
            self._updates.append(update)

    def status(self) -> dict[str, Any]:
        return {"sink": self.name, "updates": len(self.updates)}

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True
