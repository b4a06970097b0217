"""The GitHub sink: one issue per group, filed and kept up to date through a durable outbox.

``handle`` runs on the pipeline thread and only writes the ledger: the decision policy
(``policy``, pure) turns each occurrence into outbox commands, stored with the occurrence's facts
in one transaction (``enact.record``). A worker thread (``worker``) carries the commands out
(``handlers``) within the write budgets (``budget``). The texts posted are in ``messages``; the
status, live and offline, is built by ``status``. The rules are listed in ``policy``.

On PostgreSQL several instances run a sink each over one ledger: a second thread renews this
instance's claims on outbox items while it lives (see ``ledger``, "Claims").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from otel_autoheal.model import GroupUpdate
from otel_autoheal.sinks.github import enact, policy
from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.client import GitHubClient
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.handlers import Handlers
from otel_autoheal.sinks.github.ledger import ledger_for
from otel_autoheal.sinks.github.pacing import Pacer
from otel_autoheal.sinks.github.status import SinkHealth, build_status
from otel_autoheal.sinks.github.tracker import IssueTracker
from otel_autoheal.sinks.github.worker import Worker
from otel_autoheal.state import Store

__all__ = ["GitHubSink"]

logger = logging.getLogger("otel_autoheal.sinks.github")


class GitHubSink:
    """Files one GitHub issue per group. Construct with ``from_env(store)`` or a ``GitHubConfig``."""

    name = "github"

    def __init__(
        self,
        store: Store,
        config: GitHubConfig,
        *,
        start: bool = True,
        reconcile: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.ledger = ledger_for(store, lease=config.claim_lease)
        self.budget = Budget(self.ledger, config)
        self.client = GitHubClient.from_config(config)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._keeper: threading.Thread | None = None
        self._closed = False
        self.health = SinkHealth(self.ledger, config, running=self._running)
        pacer = Pacer(self.budget, self._stop)
        tracker = IssueTracker(self.ledger, self.client, config, self.health, pacer, fix_found=self._mark_dirty)
        handlers = Handlers(store=store, ledger=self.ledger, client=self.client, config=config, budget=self.budget,
                            pacer=pacer, tracker=tracker, health=self.health, fixes_changed=self._mark_dirty)
        self._worker = Worker(ledger=self.ledger, client=self.client, config=config, budget=self.budget,
                              health=self.health, tracker=tracker, handlers=handlers, stop=self._stop)
        if reconcile:
            self._reconcile()
        if start:
            self.start()

    @classmethod
    def from_env(
        cls,
        store: Store,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> GitHubSink:
        """Build from ``GITHUB_*`` / ``AUTOHEAL_GITHUB_*`` settings; raises ``SinkConfigError``."""
        return cls(store, GitHubConfig.from_env(env, overrides), **kwargs)

    # ------------------------------------------------------------------ Sink protocol

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._worker.run, name="autoheal-github-sink", daemon=True)
                self._thread.start()
                if self.ledger.shared:
                    self._keeper = threading.Thread(target=self._keep_claims, name="autoheal-github-claims",
                                                    daemon=True)
                    self._keeper.start()

    def handle(self, update: GroupUpdate) -> None:
        """Record what GitHub needs for this occurrence; never blocks on GitHub, never raises."""
        try:
            enact.record(self.ledger, update, self.config, time.time())
            self.health.handled += 1
        except Exception as exc:  # the pipeline must keep running whatever happens here
            self.health.handle_errors += 1
            self.health.error(f"cannot queue GitHub work: {type(exc).__name__}: {exc}")
            logger.exception("GitHub sink could not queue an occurrence")
        self._worker.mark_dirty()
        self._worker.wake.set()

    def status(self) -> dict[str, Any]:
        return build_status(self.config, self.ledger, self.budget, self.health)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (interrupting its waits); pending work stays in the outbox."""
        with self._lock:
            self._closed = True
            threads = [t for t in (self._thread, self._keeper) if t is not None]
            self._thread = self._keeper = None
        self._stop.set()
        self._worker.wake.set()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self.client.close()
        self.ledger.close()

    # ------------------------------------------------------------------ internals

    def _running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _keep_claims(self) -> None:
        """Renew this instance's claims every third of the lease: they outlive it only if it dies."""
        while not self._stop.wait(self.config.claim_lease / 3):
            try:
                self.ledger.renew_claims()
            except Exception as exc:  # the database is away: the next round tries again
                logger.warning("GitHub sink: cannot renew claims on outbox items: %s", exc)

    def _mark_dirty(self) -> None:
        """Fixes changed (called on the worker's thread): run the fix bookkeeping soon."""
        self._worker.mark_dirty()

    def _reconcile(self) -> None:
        """Queue creates for groups the store has but the sink never saw (crash between the two)."""
        known = self.ledger.known_fingerprints()
        for group in self.store.groups():
            if group.fingerprint in known:
                continue
            trusted = bool(group.source) and group.source not in self.config.handoff_untrusted_sources
            facts = {"count": group.count, "in_app": False, "trusted_source": trusted, "provenance": "attribute"}
            data = policy.data_block(group.body, group.exception_type, group.service, group.source)
            create = policy.create_command(self.config, group.fingerprint, title=group.title, body=group.body,
                                           source=group.source, version="", facts=facts, data=data)
            with self.ledger.unit() as u:
                u.set_issue(group.fingerprint)  # created, or locked: another instance's decision is visible now
                row = u.issue(group.fingerprint)
                if row is not None and row.count > 0:  # another instance recorded the group meanwhile
                    continue
                u.set_issue(group.fingerprint, count=group.count, source=group.source, trusted=int(trusted),
                            provenance="attribute")
                enact.queue(u, group.fingerprint, [create])
