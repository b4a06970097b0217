"""How a handler waits for the write budget, and how it tells the worker to stop or come back later."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from otel_autoheal.sinks.github.budget import Budget

__all__ = ["Deferred", "Pacer", "Stopping"]

#: The longest one budget wait sleeps before looking at the stop flag again.
_WAIT_STEP = 5.0


class Stopping(Exception):
    """The sink is closing; leave the current item pending."""


class Deferred(Exception):
    """Not yet: the item stays pending until ``until`` (``note`` is recorded as why)."""

    def __init__(self, until: float, note: str | None = None) -> None:
        super().__init__(note or "deferred")
        self.until, self.note = until, note


class Pacer:
    """Budget waits that end early when the sink closes (raising ``Stopping``)."""

    def __init__(self, budget: Budget, stop: threading.Event) -> None:
        self.budget = budget
        self._stop = stop

    def check(self) -> None:
        if self._stop.is_set():
            raise Stopping()

    def search_slot(self) -> None:
        """Wait for room in the search budget (shared by every instance) and count the search."""
        while True:
            self.check()
            wait = self.budget.take("search")
            if wait <= 0:
                return
            self._stop.wait(min(wait, _WAIT_STEP))

    @contextmanager
    def write(self, kind: str) -> Iterator[None]:
        """Wait until the budget allows a write of ``kind``, count it, then send it (the block).

        The spacing is measured from the end of the previous write, so GitHub sees at least
        ``min_write_interval`` between writes however long a request spends on the wire.
        """
        while True:
            self.check()
            wait = self.budget.take(kind)  # checked and counted in one step, for every instance
            if wait <= 0:
                break
            self._stop.wait(min(wait, _WAIT_STEP))
        try:
            yield
        finally:
            self.budget.write_finished()
