"""Group commit of the intake journal: receivers wait for their entries to be durable, together.

Each receiver thread queues its failed spans and exception logs and waits until a writer thread
has committed them; the writer commits everything queued at once, so concurrent requests share one
SQLite transaction instead of paying one each.

The wait is bounded (``journal_timeout``) and never ends in an acknowledgement of data that is
not committed: a receiver whose entries are not durable in time gets ``JournalUnavailable``
(503 + Retry-After / UNAVAILABLE; the sender retries). Entries of a receiver that gave up are
never written later: the writer seals a batch only once it holds the database's write lock and
leaves out the entries whose receiver gave up, so a retry is journalled once, not twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otel_autoheal.errors import Overloaded, StateBusy, StateError
from otel_autoheal.state._protocol import Store

__all__ = ["JournalUnavailable", "JournalWriter"]

log = logging.getLogger("otel_autoheal.receive.journal")

#: Longest the writer waits for the write lock at a time: between attempts it notices receivers
#: that gave up and a shutdown, and never holds the store's lock for longer while the database
#: is locked by someone else.
_LOCK_POLL_SECONDS = 0.1
#: Extra wait for a batch that is already being committed when a receiver's own wait ends: the
#: commit itself is short once the write lock is held, and its outcome decides the answer.
_SEALED_GRACE_SECONDS = 5.0


class JournalUnavailable(Overloaded, StateError):
    """The request's errors could not be made durable in time: answer retryably, acknowledge nothing."""


@dataclass
class _Ticket:
    entries: list[tuple[str, str, str]]
    #: queued → taken (by the writer) → sealed (inside the transaction) → committed | failed;
    #: queued/taken → abandoned when its receiver gives up.
    state: str = "queued"
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    #: Called (from any thread) once ``done`` is set: wakes an event loop waiting for the ticket.
    on_done: Callable[[], object] | None = None

    def settle(self) -> None:
        self.done.set()
        if self.on_done is not None:
            self.on_done()


class JournalWriter:
    """Thread-safe; ``add`` returns once the entries are committed, else raises ``JournalUnavailable``."""

    def __init__(self, store: Store, timeout: float = 2.0) -> None:
        self._store = store
        self._timeout = timeout
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._stop = False
        #: Requests waiting for their entries to be committed (a gauge).
        self.waiting = 0
        self._warned = float("-inf")
        self._thread = threading.Thread(target=self._run, name="autoheal-journal", daemon=True)
        self._thread.start()

    def add(self, entries: list[tuple[str, str, str]]) -> None:
        """Return once ``entries`` are committed; raise ``JournalUnavailable`` if that fails or takes too long."""
        if not entries:
            return
        ticket = _Ticket(entries)
        self._enqueue(ticket)
        try:
            self._wait(ticket)
        finally:
            with self._cond:
                self.waiting -= 1

    async def add_async(self, entries: list[tuple[str, str, str]]) -> None:
        """``add`` for an event loop: the writer thread wakes the loop, no thread waits meanwhile."""
        if not entries:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        ticket = _Ticket(entries, on_done=notify)
        self._enqueue(ticket)
        try:
            try:
                await asyncio.wait_for(asyncio.shield(done), self._timeout)
            except TimeoutError:
                self._give_up(ticket)
                try:  # a sealed ticket's fate is being decided by a commit under way: wait for it
                    await asyncio.wait_for(asyncio.shield(done), _SEALED_GRACE_SECONDS)
                except TimeoutError:
                    pass
            self._verdict(ticket)
        finally:
            with self._cond:
                self.waiting -= 1

    def _enqueue(self, ticket: _Ticket) -> None:
        with self._cond:
            if self._stop:
                raise JournalUnavailable("the service is shutting down; retry")
            self._queue.append(ticket)
            self.waiting += 1
            self._cond.notify_all()

    def _give_up(self, ticket: _Ticket) -> None:
        """The receiver stops waiting: a ticket not yet in a transaction is never written."""
        with self._cond:
            if ticket.state in ("queued", "taken"):
                if ticket.state == "queued":
                    self._queue.remove(ticket)
                ticket.state = "abandoned"
                ticket.error = f"not committed within journal_timeout={self._timeout:g}s"
                ticket.settle()

    def _wait(self, ticket: _Ticket) -> None:
        if not ticket.done.wait(self._timeout):
            self._give_up(ticket)
            # A sealed ticket's fate is being decided by a commit already under way: wait for it.
            ticket.done.wait(_SEALED_GRACE_SECONDS)
        self._verdict(ticket)

    def _verdict(self, ticket: _Ticket) -> None:
        """Return if the ticket's entries are committed, else raise ``JournalUnavailable``."""
        if ticket.state != "committed":
            reason = ticket.error or "its commit is still under way"
            now = time.monotonic()
            if now - self._warned > 60:  # once a minute: a locked database refuses every request
                self._warned = now
                log.warning("intake journal unavailable (%s): requests with errors are refused (503/UNAVAILABLE) "
                            "until it recovers; raise journal_timeout if the disk is just slow", reason)
            raise JournalUnavailable(f"cannot journal the request's errors durably ({reason}); retry later")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stop)
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                for ticket in batch:
                    ticket.state = "taken"
            self._commit(batch)

    def _commit(self, batch: list[_Ticket]) -> None:
        while True:
            try:
                with self._store.transaction(wait=_LOCK_POLL_SECONDS) as conn:
                    # Only now, holding the write lock, is it decided which entries go in: a receiver
                    # that gave up while we waited for the lock has already answered 503. Requests
                    # queued meanwhile join this commit.
                    with self._cond:
                        batch.extend(self._queue)
                        self._queue = []
                        for ticket in batch:
                            if ticket.state in ("queued", "taken"):
                                ticket.state = "sealed"
                    self._store.journal_add([e for t in batch if t.state == "sealed" for e in t.entries], conn)
            except StateBusy:
                with self._cond:
                    if not self._stop and any(t.state == "taken" for t in batch):
                        continue  # someone still waits: try again
                self._finish(batch, "the service is shutting down")  # (or every receiver gave up)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not durable": the senders retry
                error = str(exc) or type(exc).__name__
                log.error("cannot write the intake journal (%d requests): %s", len(batch), error)
                self._finish(batch, error)
                return
            self._finish(batch, "")
            return

    def _finish(self, batch: list[_Ticket], error: str) -> None:
        with self._cond:
            for ticket in batch:
                if ticket.state in ("taken", "sealed"):
                    ticket.state = "failed" if error else "committed"
                    ticket.error = error
                    ticket.settle()

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking entries, refuse queued ones, let an ongoing commit finish (bounded by ``timeout``)."""
        with self._cond:
            self._stop = True
            for ticket in self._queue:
                ticket.state = "failed"
                ticket.error = "the service is shutting down"
                ticket.settle()
            self._queue = []
            self._cond.notify_all()
        self._thread.join(timeout)
