"""The GitHub sink: one issue per group, filed and kept up to date through a durable outbox.

``handle`` runs on the pipeline thread and only writes SQLite (the outbox and the issue map, in
one transaction); a worker thread performs the GitHub calls within the write budgets. The
decisions:

- every issue body starts with the service's header (``markers``): line 1 the fingerprint
  marker, line 2 the ``autoheal:data`` block. An issue is taken for a group's only when it was
  authored by the token's own login and its header names that group; an attacker's copy of a
  marker inside error text is never believed;
- new group -> ``create`` (labels ``autoheal``, configured ones, ``source:<source>``);
- count reaches 10, 100, 1000... or a new ``service.version`` -> ``comment`` (one pending comment
  per issue, coalesced; at most one comment per issue per ``comment_interval``);
- an occurrence of a closed issue -> ``reopen`` with a comment, unless the issue was closed as
  "not planned" (muted) or the occurrence's version is older than the one it was closed in
  (see ``versions``); the issue state is read from GitHub (``check``) at most every
  ``state_check_interval`` seconds, and the issues updated since the last look are listed every
  ``issue_poll_interval`` seconds;
- enough occurrences, trusted provenance, in-app frames -> ``handoff`` to Copilot (the rules
  are the repository gate's, ``handoff.refusal``);
- the facts the gate reads (occurrences, in-app frames, provenance) changed -> ``data``: the
  ``autoheal:data`` block on line 2 of the issue body is rewritten;
- closing the loop (``fixes``): a close as completed is traced to the merged PR; once a version
  carrying it is seen, the threshold for a reopen is that version (older ones only count), and a
  group silent for ``verify_window`` after the deploy gets one closing comment (``verify``).
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from otel_autoheal.model import GroupUpdate
from otel_autoheal.sinks.github import fixes as _fixes
from otel_autoheal.sinks.github import handoff as _handoff
from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.client import COPILOT_LOGINS, Failure, GitHubClient, classify, is_ours
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.markers import parse_header, replace_data, strip_header, with_header
from otel_autoheal.sinks.github.outbox import CLOSED_AT_SLACK, FixRow, IssueRow, Outbox, OutboxItem
from otel_autoheal.sinks.github.versions import newest_version, not_older
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["GitHubSink", "is_milestone"]

logger = logging.getLogger("otel_autoheal.sinks.github")

_MAX_BODY = 65536
_MAX_TITLE = 256
_IDLE_POLL = 30.0
_PAUSED_POLL = 3600.0
_WRITE_KIND = {"create": "issue", "comment": "comment", "reopen": "edit", "handoff": "assign", "check": "",
               "verify": "comment", "data": "edit"}
#: What a skipped hand-off is recorded as, per rule of ``handoff.refusal`` (``occurrences``: wait).
_SKIPPED = {"untrusted": "skipped_untrusted", "in_app": "skipped_no_in_app"}
#: Local bookkeeping of fixes (deploys, due closing comments) runs at most this often while
#: occurrences arrive; otherwise when the next closing comment is due.
_HOUSEKEEP_MIN = 0.5


class _Stopping(Exception):
    """The sink is closing; leave the current item pending."""


class _Deferred(Exception):
    def __init__(self, until: float, note: str | None = None) -> None:
        self.until, self.note = until, note


def is_milestone(count: int) -> int:
    """The milestone ``count`` has reached: the largest power of ten <= count (>= 10), else 0."""
    if count < 10:
        return 0
    m = 10
    while m * 10 <= count:
        m *= 10
    return m


def _safe(text: str, limit: int = 64) -> str:
    """A telemetry-supplied token (a version) made inert for Markdown."""
    return re.sub(r"[^\w.+\-]", "_", text)[:limit] or "unknown"


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubSink:
    """Files one GitHub issue per group. Construct with ``from_env(store)`` or a ``GitHubConfig``."""

    name = "github"

    def __init__(
        self,
        store: SQLiteStore,
        config: GitHubConfig,
        *,
        start: bool = True,
        reconcile: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.outbox = Outbox(store)
        self.budget = Budget(self.outbox, config)
        self.client = GitHubClient(config)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._paused: str | None = None
        self._handoff_error: str | None = None
        self._repo_checked = False
        self._handled = 0
        self._handle_errors = 0
        self._assignees: list[str] = []
        self._issue: dict[str, Any] = {}
        self._identity: str | None = config.login or None
        self._user_forbidden = False
        self._dirty = True
        self._housekept = 0.0
        self._housekeep_at = 0.0
        self._next_poll = time.time() + config.issue_poll_interval
        self.outbox.set_meta("paused", "")  # a restart (with fixed settings) tries again
        if reconcile:
            self._reconcile()
        if start:
            self.start()

    @classmethod
    def from_env(
        cls,
        store: SQLiteStore,
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
                self._thread = threading.Thread(target=self._run, name="autoheal-github-sink", daemon=True)
                self._thread.start()

    def handle(self, update: GroupUpdate) -> None:
        """Record what GitHub needs for this occurrence; never blocks on GitHub, never raises."""
        try:
            self._record(update, time.time())
            self._handled += 1
        except Exception as exc:  # the pipeline must keep running whatever happens here
            self._handle_errors += 1
            self._error(f"cannot queue GitHub work: {type(exc).__name__}: {exc}")
            logger.exception("GitHub sink could not queue an occurrence")
        self._dirty = True
        self._wake.set()

    def status(self) -> dict[str, Any]:
        counts = self.outbox.counts()
        oldest = self.outbox.oldest_pending()
        return {
            "sink": self.name,
            "repo": self.config.repository,
            "api_url": self.config.api_url,
            "token_source": self.config.token_source,
            "identity": self._identity,
            "running": self._thread is not None and self._thread.is_alive(),
            "paused": self._paused,
            "issues_filed": len(self.outbox.issue_numbers()),
            "outbox": {
                "pending": counts["pending"],
                "failed": counts["failed"],
                "done": counts["done"],
                "oldest_pending_age": round(time.time() - oldest, 1) if oldest else None,
                "recent_failures": self.outbox.failures(),
            },
            "budget": self.budget.usage(),
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
            "occurrences_handled": self._handled,
            "handle_errors": self._handle_errors,
            "handoff": {
                "mode": self.config.handoff,
                "dry_run": self.config.handoff_dry_run,
                "counts": self.outbox.handoff_counts(),
                "last_error": self._handoff_error,
            },
            "fixes": {**self.outbox.fix_counts(), "verify_window": self.config.verify_window},
        }

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (interrupting its waits); pending work stays in the outbox."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.client.close()

    # ------------------------------------------------------------------ pipeline side

    def _record(self, update: GroupUpdate, now: float) -> None:
        cfg = self.config
        occ, group = update.occurrence, update.group
        fp = group.fingerprint
        version = occ.exception.service_version
        source = occ.exception.source or group.source
        in_app = _handoff.has_in_app_frames(occ)
        trusted, basis = _handoff.provenance(occ.exception, cfg.handoff_untrusted_sources)
        with self.store.transaction() as conn:
            Outbox.set_issue(conn, fp)
            row = Outbox.issue(conn, fp)
            assert row is not None
            if version:
                Outbox.see_version(conn, fp, version, now)
            count = max(row.count, group.count)
            milestone = is_milestone(count)
            # One occurrence from an untrusted origin makes the whole group untrusted, for good.
            if row.trusted is not None and trusted:
                trusted, basis = row.trusted, row.provenance or basis
            facts = {"count": count, "in_app": bool(row.has_in_app or in_app), "trusted_source": trusted,
                     "provenance": basis}
            Outbox.set_issue(
                conn,
                fp,
                count=count,
                newest_version=version or row.newest_version,
                source=row.source or source,  # the first source wrote the issue body
                has_in_app=int(row.has_in_app or in_app),
                milestone=max(row.milestone, milestone),
                trusted=int(trusted),
                provenance=basis,
            )
            filed = row.issue_number is not None
            queued = Outbox.pending_item(conn, "create", fp) is not None
            if not filed and not queued:
                failed = conn.execute(
                    "SELECT 1 FROM github_outbox WHERE kind = 'create' AND fingerprint = ? AND state = 'failed'",
                    (fp,),
                ).fetchone()
                if failed is None:
                    self._queue_create(conn, fp, occ.title, occ.body, source, version, facts,
                                       self._data_of(occ.body, occ.exception.type, occ.exception.service_name, source))
                    queued = True
            if not (filed or queued):
                return
            gate_facts_changed = (
                row.count < cfg.handoff_min_occurrences <= count
                or milestone > row.milestone
                or (row.trusted is not None and row.trusted != trusted)
                or (in_app and not row.has_in_app)
            )
            # Only an open issue can still be handed over; a closed one keeps the facts it was closed with.
            if gate_facts_changed and not update.is_new and row.state != "closed":
                self._merge(conn, "data", fp, facts)
            snapshot = {"version": version, "ts": now, "body": occ.body, "count": count}
            reasons: list[str] = []
            if milestone > row.milestone and not update.is_new:
                reasons.append(f"reached {milestone} occurrences")
            if update.new_version and version and not update.is_new:
                reasons.append(f"first occurrence in version `{_safe(version)}`")
            if filed and row.state == "closed":
                reasons = []  # a closed issue gets a reopen comment or nothing
                if self._regresses(conn, row, version):
                    self._merge(conn, "reopen", fp, snapshot)
                else:
                    self._count_stale(conn, fp)
            elif filed and now - row.state_checked_at >= cfg.state_check_interval:
                self._merge(conn, "check", fp, snapshot)
            if reasons:
                self._merge(conn, "comment", fp, {**snapshot, "reasons": reasons})
            if cfg.handoff == "copilot" and not row.handoff and not row.muted:
                refused = _handoff.refusal(cfg, source=row.source or source, trusted=trusted, basis=basis,
                                           count=count, in_app=bool(facts["in_app"]))
                if refused is None:
                    Outbox.enqueue(conn, "handoff", fp, {})
                    Outbox.set_issue(conn, fp, handoff="queued")
                elif refused[0] in _SKIPPED:
                    Outbox.set_issue(conn, fp, handoff=_SKIPPED[refused[0]])
                    logger.info("not handing %s off to Copilot: %s", fp[:12], refused[1])

    def _regresses(self, conn: Any, row: IssueRow, version: str) -> bool:
        """Whether an occurrence in ``version`` reopens the closed issue ``row``: the one rule for every path.

        With a fix in force the threshold is the version carrying it; until that version is seen
        (merged, not deployed) every versioned occurrence comes from a build without the fix.
        Without a fix it is the version the issue was closed in.
        """
        if row.muted:
            return False
        fix = Outbox.fix(conn, row.fingerprint)
        if fix is None:
            seen = [v for (v,) in conn.execute(
                "SELECT version FROM github_versions WHERE fingerprint = ? AND first_seen <= ?",
                (row.fingerprint, (row.closed_at or 0) + CLOSED_AT_SLACK),
            )]
            return not_older(version, row.closed_version, seen)
        fix = self._settle(conn, fix, row.closed_version)
        if not fix.fix_version:
            return not version  # an unversioned occurrence cannot be told apart from a fixed one
        deployed = fix.deployed_at or 0.0
        seen = [v for v, t in Outbox.service_versions(conn, row.fingerprint) if t < deployed]
        return not_older(version, fix.fix_version, seen)

    @staticmethod
    def _settle(conn: Any, fix: FixRow, closed_version: str) -> FixRow:
        """A merged fix becomes deployed once a version of the service carrying it has been seen."""
        if fix.state != "merged":
            return fix
        found = _fixes.deployed_version(Outbox.service_versions(conn, fix.fingerprint), fix.merged_at, closed_version)
        if found is None:
            return fix
        base, version, first_seen = found
        Outbox.set_fix(conn, fix.id, base_version=base, fix_version=version, deployed_at=first_seen, state="deployed")
        logger.info("fix for %s (%s) deployed in version %s", fix.fingerprint[:12], _fixes.fix_reference(fix), version)
        settled = Outbox.fix_by_id(conn, fix.id)
        assert settled is not None
        return settled

    @staticmethod
    def _count_stale(conn: Any, fp: str) -> None:
        """An occurrence after the close in a build without the fix: counted, never a regression."""
        fix = Outbox.fix(conn, fp)
        if fix is not None:
            Outbox.set_fix(conn, fix.id, stale=fix.stale + 1)

    @staticmethod
    def _data_of(body: str, exception_type: str, service: str, source: str) -> dict[str, Any]:
        """The renderer's data block (at its fixed place in ``body``), or the basic facts without one."""
        data = parse_header(body)
        if data is not None:
            return data
        return {"exception_type": exception_type, "service": service, "source": source}

    def _queue_create(
        self, conn: Any, fp: str, title: str, body: str, source: str, version: str, facts: dict[str, Any],
        data: dict[str, Any],
    ) -> None:
        # The header is written here, whatever the renderer put where: it is what makes the issue ours.
        body = with_header(fp, {**data, **facts}, body)
        Outbox.enqueue(
            conn,
            "create",
            fp,
            {
                "title": title[:_MAX_TITLE] or "Error",
                "body": body,
                "labels": self.config.all_labels(source),
                "version": version,
            },
        )

    @staticmethod
    def _merge(conn: Any, kind: str, fp: str, payload: dict[str, Any]) -> None:
        """Queue ``kind`` for ``fp`` or fold ``payload`` into the one already pending (newest wins)."""
        item = Outbox.pending_item(conn, kind, fp)
        if item is None:
            Outbox.enqueue(conn, kind, fp, payload)
            return
        merged = {**item.payload, **payload}
        if "reasons" in payload or "reasons" in item.payload:
            reasons = list(item.payload.get("reasons", []))
            reasons += [r for r in payload.get("reasons", []) if r not in reasons]
            merged["reasons"] = reasons
        Outbox.set_payload(conn, item.id, merged)

    def _reconcile(self) -> None:
        """Queue creates for groups the store has but the sink never saw (crash between the two)."""
        known = set()
        with self.store.transaction() as conn:
            known = {r[0] for r in conn.execute("SELECT fingerprint FROM github_issues")}
        for group in self.store.groups():
            if group.fingerprint in known:
                continue
            trusted = bool(group.source) and group.source not in self.config.handoff_untrusted_sources
            facts = {"count": group.count, "in_app": False, "trusted_source": trusted, "provenance": "attribute"}
            with self.store.transaction() as conn:
                Outbox.set_issue(conn, group.fingerprint, count=group.count, source=group.source,
                                 trusted=int(trusted), provenance="attribute")
                self._queue_create(conn, group.fingerprint, group.title, group.body, group.source, "", facts,
                                   self._data_of(group.body, group.exception_type, group.service, group.source))

    # ------------------------------------------------------------------ worker side

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._step()
            except _Stopping:
                break
            except Exception as exc:  # keep the worker alive; the item stays pending
                logger.exception("GitHub sink worker error")
                self._error(f"worker error: {type(exc).__name__}: {exc}")
                wait = 1.0
            if wait > 0:
                self._wake.wait(min(wait, _IDLE_POLL))
                self._wake.clear()

    def _step(self) -> float:
        if self._paused:
            return _PAUSED_POLL
        now = time.time()
        if self.budget.request_wait(now) > 0:
            return self.budget.request_wait(now)
        if not self._repo_checked:
            try:
                self.client.check_repository()
                self._repo_checked = True
            except Exception as exc:
                f = classify(exc)
                if f.kind == "not_found":
                    f = Failure("config", self._repo_help(f.message), 404)
                return self._apply_failure(None, f)
        best = min(_IDLE_POLL, self._housekeeping(now))
        if self.config.issue_poll_interval > 0:
            if now >= self._next_poll:
                self._poll(now)
                return 0.0
            best = min(best, self._next_poll - now)
        numbers = self.outbox.issue_numbers()
        for item in self.outbox.pending():
            if item.not_before > now:
                best = min(best, item.not_before - now)
                continue
            if item.kind != "create" and item.fingerprint not in numbers:
                if not self.outbox.has_pending("create", item.fingerprint):
                    self.outbox.fail(item.id, "the issue for this group was never created")
                continue
            if item.kind == "handoff" and not self.config.handoff_dry_run:
                hw = self.budget.handoff_wait(now)
                if hw > 0:
                    best = min(best, hw)
                    continue
            kind = _WRITE_KIND[item.kind]
            w = self.budget.write_wait(now, kind) if kind else 0.0
            if item.kind == "create" and (item.attempts > 0 or self.config.search_before_create):
                w = max(w, self.budget.search_wait(now))
            if w > 0:
                best = min(best, w)
                continue
            self._process(item, numbers.get(item.fingerprint))
            return 0.0
        return best

    def _process(self, item: OutboxItem, number: int | None) -> None:
        handler = {
            "create": self._do_create,
            "comment": self._do_comment,
            "check": self._do_check,
            "reopen": self._do_reopen,
            "handoff": self._do_handoff,
            "verify": self._do_verify,
            "data": self._do_data,
        }[item.kind]
        try:
            note = handler(item, number)
        except _Stopping:
            raise
        except _Deferred as d:
            self.outbox.defer(item.id, d.until, d.note, count_retry=False)
            return
        except Exception as exc:
            f = classify(exc)
            if f.kind == "not_found":
                f = self._explain_not_found(item, number, f)
            self._apply_failure(item, f)
            return
        self.outbox.done(item, note)

    def _apply_failure(self, item: OutboxItem | None, f: Failure) -> float:
        what = f"{item.kind} #{item.id}" if item else "repository check"
        msg = self._redact(f"{what}: {f.message}")
        self._error(msg)
        now = time.time()
        if f.kind == "transient":
            retries = item.retries if item else 0
            delay = min(self.config.backoff_max, self.config.backoff_base * (2 ** min(retries, 20)))
            delay *= random.uniform(0.5, 1.0)
            logger.warning("GitHub unavailable, retrying in %.1fs: %s", delay, msg)
            if item:
                self.outbox.defer(item.id, now + delay, msg, count_retry=True)
            return delay
        if f.kind == "rate_limited":
            until = f.retry_at or now + 60
            self.budget.block(until, msg)
            logger.warning("GitHub rate limit, waiting %.0fs: %s", until - now, msg)
            if item:
                self.outbox.defer(item.id, until, msg, count_retry=False)
            return until - now
        if f.kind == "forbidden" and item is not None and item.kind != "create" and "locked" in f.message.lower():
            f = Failure("rejected", f"{f.message} (the issue is locked)", f.status)
        if f.kind in ("config", "forbidden"):
            if f.kind == "forbidden":
                msg = self._redact(
                    f"{what}: {f.message} - the token cannot write issues in {self.config.repository}"
                    " (fine-grained PAT needs Issues: read and write, Metadata: read)"
                )
            self._paused = msg
            self._persist("paused", msg)
            self._error(msg)
            logger.error("GitHub sink paused, fix the setting and restart: %s", msg)
            return _PAUSED_POLL
        if item:
            self.outbox.fail(item.id, msg)
        logger.error("GitHub sink gave up on %s", msg)
        return 0.0

    def _housekeeping(self, now: float) -> float:
        """Run the local fix bookkeeping when due; seconds until it is due again."""
        due = min(self._housekeep_at, self._housekept + _HOUSEKEEP_MIN) if self._dirty else self._housekeep_at
        if now >= due:
            self._dirty = False
            self._housekept = now
            self._housekeep_at = now + self._housekeep(now)
            due = self._housekeep_at
        return max(0.0, due - now)

    def _housekeep(self, now: float) -> float:
        """Settle deploys of merged fixes and queue the closing comments that are due (SQLite only).

        Returns the seconds until the next closing comment is due (at most ``_IDLE_POLL``).
        """
        wait = _IDLE_POLL
        window = self.config.verify_window
        with self.store.transaction() as conn:
            for fix in Outbox.fixes_in(conn, "merged", "deployed"):
                row = Outbox.issue(conn, fix.fingerprint)
                if row is None or row.state != "closed" or row.issue_number is None:
                    continue
                fix = self._settle(conn, fix, row.closed_version)
                if fix.state != "deployed" or window <= 0:
                    continue
                last = conn.execute("SELECT last_seen FROM groups WHERE fingerprint = ?", (fix.fingerprint,)).fetchone()
                due = max(fix.deployed_at or now, float(last[0]) if last else 0.0) + window
                if due <= now:
                    if Outbox.pending_item(conn, "verify", fix.fingerprint) is None:
                        Outbox.enqueue(conn, "verify", fix.fingerprint, {"fix": fix.id})
                    Outbox.set_fix(conn, fix.id, state="verifying")
                    wait = 0.0
                else:
                    wait = min(wait, due - now)
        return wait

    def _poll(self, now: float) -> None:
        """List the issues updated since the last look and take in their state (closes, reopens, fixes)."""
        self._next_poll = now + self.config.issue_poll_interval
        try:
            self._poll_issues()
        except _Stopping:
            raise
        except Exception as exc:
            f = classify(exc)
            if f.kind == "rate_limited":
                self._apply_failure(None, f)
            else:
                self._error(f"issue poll: {f.message}")
                logger.warning("GitHub issue poll failed, next in %.0fs: %s", self.config.issue_poll_interval,
                               f.message)

    def _poll_issues(self) -> None:
        by_number = {n: fp for fp, n in self.outbox.issue_numbers().items()}
        if not by_number:
            return
        since = self.outbox.meta("issue_poll_since")
        if not since:
            with self.store.transaction() as conn:
                (oldest,) = conn.execute(
                    "SELECT MIN(created) FROM github_issues WHERE issue_number IS NOT NULL"
                ).fetchone()
            since = _iso(float(oldest or time.time()) - 120)
        newest = since
        for page in range(1, 11):
            if self._stop.is_set():
                raise _Stopping()
            items = self.client.issues_updated_since(since, page)
            for it in items:
                fp = by_number.get(int(it.get("number") or 0))
                if fp is not None and "pull_request" not in it:
                    self._apply_issue(fp, it)
                # ISO 8601 UTC timestamps order as strings; GitHub's own clock, so no skew.
                newest = max(newest, str(it.get("updated_at") or newest))
            if len(items) < 100:
                break
        self.outbox.set_meta("issue_poll_since", newest)

    def _repo_help(self, message: str) -> str:
        return (
            f"GITHUB_REPOSITORY: repository {self.config.repository!r} not found at {self.config.api_url}"
            f" or the token cannot see it ({message})"
        )

    def _explain_not_found(self, item: OutboxItem, number: int | None, f: Failure) -> Failure:
        if item.kind == "create" or number is None:
            return Failure("config", self._repo_help(f.message), 404)
        try:
            self.client.check_repository()
        except Exception as exc:
            g = classify(exc)
            return Failure("config", self._repo_help(g.message), 404) if g.kind == "not_found" else g
        return Failure("rejected", f"issue #{number} no longer exists (deleted or transferred)", 404)

    def _search_slot(self) -> None:
        """Wait (interruptibly) for room in the search budget, then count the search."""
        while True:
            if self._stop.is_set():
                raise _Stopping()
            wait = self.budget.search_wait(time.time())
            if wait <= 0:
                self.budget.record_search()
                return
            self._stop.wait(min(wait, 5.0))

    @contextmanager
    def _write(self, kind: str) -> Iterator[None]:
        """Wait (interruptibly) until the budget allows a write of ``kind``, count it, then send it.

        The spacing is measured from the end of the previous write, so GitHub sees at least
        ``min_write_interval`` between writes however long a request spends on the wire.
        """
        while True:
            if self._stop.is_set():
                raise _Stopping()
            wait = self.budget.write_wait(time.time(), kind)
            if wait <= 0:
                break
            self._stop.wait(min(wait, 5.0))
        self.budget.record(kind)
        try:
            yield
        finally:
            self.budget.write_finished()

    # ------------------------------------------------------------------ item handlers

    def _do_create(self, item: OutboxItem, number: int | None) -> str:
        fp, p = item.fingerprint, item.payload
        if number is not None:
            return f"already filed as #{number}"
        # A retry may have reached GitHub; a first attempt may predate a lost state database.
        found = None
        if item.attempts > 0 or self.config.search_before_create:
            login = self._own_login()
            if login is None:
                logger.warning("cannot look for an existing issue of %s: the token's login is unknown (GET /user is "
                               "forbidden; set AUTOHEAL_GITHUB_LOGIN)", fp[:12])
            else:
                found = self.client.find_issue_by_marker(
                    fp, item.created if item.attempts > 0 else None, login, before_search=self._search_slot
                )
        if found is not None:
            self.outbox.update_issue(fp, issue_number=found, state_checked_at=0.0)
            with self.store.transaction() as conn:  # it may have been closed: read its state now
                self._merge(conn, "check", fp, {"version": p.get("version", ""), "ts": item.created,
                                               "body": p["body"], "count": 1})
            logger.info("found existing issue #%s for %s", found, fp[:12])
            return f"found existing #{found}"
        for label in p["labels"]:
            if self.outbox.label_known(label):
                continue
            if not self.client.label_exists(label):
                with self._write("label"):
                    self.client.create_label(label)
            self.outbox.remember_label(label)
        with self._write("issue"):
            self.outbox.begin_attempt(item.id)
            n, author = self.client.create_issue(p["title"], p["body"], p["labels"])
        self.outbox.update_issue(fp, issue_number=n, state="open", state_checked_at=time.time())
        if self._identity is None and author:
            self._learn_login(author, "the author of the issue it filed")
        logger.info("filed issue #%s for %s", n, fp[:12])
        return f"filed #{n}"

    def _refresh(self, fp: str, number: int) -> IssueRow:
        """Read the issue from GitHub and remember its state (see ``_apply_issue``)."""
        data = self.client.get_issue(number)
        row = self._apply_issue(fp, data)
        self._issue = data
        self._assignees = [str(a.get("login")) for a in data.get("assignees") or []]
        return row

    def _learn_login(self, login: str, how: str) -> None:
        self._identity = login
        self.outbox.set_meta("github_login", login)
        logger.info("GitHub identity of the token: %s (%s)", login, how)

    def _own_login(self) -> str | None:
        """The login the token files as: configured, else ``GET /user`` (once), else learned earlier.

        A GitHub App installation token may not read ``GET /user`` (403); its login is then the
        author of the first issue this sink filed, remembered in the state database.
        """
        if self._identity is not None:
            return self._identity
        if not self._user_forbidden:
            login = self.client.authenticated_login()
            if login is not None:
                self._learn_login(login, "GET /user")
                return login
            self._user_forbidden = True
            logger.info("GET /user is not allowed for this token (GitHub App?); using the login learned from an "
                        "issue it filed, or AUTOHEAL_GITHUB_LOGIN")
        stored = self.outbox.meta("github_login")
        if stored:
            self._identity = stored
        return self._identity

    def _still_ours(self, fp: str) -> bool:
        """The issue just read (``_refresh``) is authored by us and starts with this group's header."""
        login = self._own_login()
        if login is None:  # unknown identity: the number came from our own map; check the header only
            data = parse_header(self._issue.get("body"))
            return data is not None and data.get("fingerprint") == fp
        return is_ours(self._issue, fp, login)

    def _apply_issue(self, fp: str, data: Mapping[str, Any]) -> IssueRow:
        """Remember an issue's state as GitHub reports it; on a new close, the closing version and fix.

        A close as completed is looked up in the timeline (before anything is stored, so a failed
        read leaves the close to be seen again). Reopened by anyone: the fix in force has ended.
        """
        row = self.outbox.get_issue(fp)
        assert row is not None
        now = time.time()
        if data.get("state") == "closed":
            closed_at = _parse_time(data.get("closed_at")) or now
            reason = data.get("state_reason") or "completed"
            new_close = row.state != "closed" or row.closed_at is None or abs(row.closed_at - closed_at) > 1
            merged = None
            if new_close and reason == "completed" and row.issue_number is not None:
                merged = _fixes.find_merged_fix(
                    self.client.timeline(row.issue_number), closed_at, self.config.repository, self.client.get_pull
                )
            with self.store.transaction() as conn:
                closed_version = row.closed_version
                if new_close:
                    closed_version = newest_version(
                        (str(v), float(t)) for v, t in conn.execute(
                            "SELECT version, first_seen FROM github_versions WHERE fingerprint = ? AND first_seen <= ?",
                            (fp, closed_at + CLOSED_AT_SLACK),
                        )
                    )
                    Outbox.end_fixes(conn, fp, "reopened")  # a fix of an earlier close no longer holds it closed
                    if merged is not None:
                        Outbox.add_fix(conn, fp, closed_at, merged.pr_number, merged.commit_sha, merged.merged_at,
                                       "merged")
                Outbox.set_issue(conn, fp, state="closed", state_reason=reason, closed_at=closed_at,
                                 closed_version=closed_version, state_checked_at=now)
            if merged is not None and new_close:
                by = f"PR #{merged.pr_number}" if merged.pr_number is not None else f"commit {merged.commit_sha[:12]}"
                logger.info("issue #%s closed by %s; waiting for a version carrying it", row.issue_number, by)
                self._dirty = True
        else:
            with self.store.transaction() as conn:
                if row.state == "closed":
                    Outbox.end_fixes(conn, fp, "reopened")
                Outbox.set_issue(conn, fp, state="open", state_reason=data.get("state_reason") or "",
                                 state_checked_at=now)
        row = self.outbox.get_issue(fp)
        assert row is not None
        return row

    def _reopens(self, row: IssueRow, version: str) -> bool:
        with self.store.transaction() as conn:
            return self._regresses(conn, row, version)

    def _do_check(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        row = self._refresh(item.fingerprint, number)
        p = item.payload
        if row.state != "closed":
            return "open"
        if row.muted:
            return "closed as not planned: muted"
        if p.get("ts", 0) > (row.closed_at or 0):
            with self.store.transaction() as conn:
                if self._regresses(conn, row, p.get("version", "")):
                    self._merge(conn, "reopen", item.fingerprint, p)
                    return "regression: reopen queued"
                self._count_stale(conn, item.fingerprint)
        return "closed; occurrence older than the closing version"

    def _comment_text(self, item: OutboxItem, headline: str) -> str:
        body = strip_header(str(item.payload.get("body", "")))
        head = f"<!-- autoheal:outbox={item.id} -->\n{headline}\n\n"
        room = _MAX_BODY - len(head) - 200
        if len(body) > room:
            body = body[:room] + "\n\n_(truncated)_\n"
        return head + body

    def _post_comment(self, item: OutboxItem, number: int, text: str) -> None:
        token = f"<!-- autoheal:outbox={item.id} -->"
        if item.attempts > 0 and self.client.comment_exists(number, token, item.created, self._own_login()):
            return
        with self._write("comment"):
            self.outbox.begin_attempt(item.id)
            self.client.comment(number, text)

    def _do_comment(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, p = item.fingerprint, item.payload
        row = self.outbox.get_issue(fp)
        assert row is not None
        now = time.time()
        if now - row.state_checked_at >= self.config.state_check_interval:
            row = self._refresh(fp, number)
        if row.state == "closed":
            if row.muted:
                return "muted (closed as not planned): not commented"
            if self._reopens(row, p.get("version", "")):
                with self.store.transaction() as conn:
                    self._merge(conn, "reopen", fp, {k: v for k, v in p.items() if k != "reasons"})
                return "issue closed: reopen queued instead"
            return "issue closed; occurrence older than the closing version: not commented"
        due = row.last_comment_at + self.config.comment_interval
        if due > now:
            raise _Deferred(due, "coalescing: comment interval not over")
        reasons = "; ".join(p.get("reasons", [])) or "seen again"
        headline = (
            f"**otel-autoheal:** {reasons}. {p.get('count', row.count)} occurrences so far. "
            f"Newest occurrence (service.version `{_safe(p.get('version') or '')}`):"
        )
        self._post_comment(item, number, self._comment_text(item, headline))
        self.outbox.update_issue(fp, last_comment_at=time.time())
        return "commented"

    def _do_reopen(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, p = item.fingerprint, item.payload
        row = self._refresh(fp, number)
        if row.state == "closed":
            if row.muted:
                return "muted (closed as not planned): not reopened"
            if not self._reopens(row, p.get("version", "")):
                return "occurrence older than the closing version: not reopened"
            if not p.get("reopened"):
                with self._write("edit"):
                    self.outbox.begin_attempt(item.id)
                    self.client.reopen(number)
                with self.store.transaction() as conn:
                    Outbox.set_payload(conn, item.id, {**p, "reopened": True})
        elif not p.get("reopened") and item.attempts == 0:
            return "already open"
        version = _safe(p.get("version") or "")
        with self.store.transaction() as conn:
            fix = Outbox.fix_for_close(conn, fp, row.closed_at) if row.closed_at is not None else None
        count = p.get("count", row.count)
        if fix is not None and fix.fix_version:
            headline = (
                f"**otel-autoheal: regression, the fix did not hold.** This issue was closed by "
                f"{_fixes.fix_reference(fix)}, first deployed in version `{_safe(fix.fix_version)}`, and the "
                f"error is back in version `{version}` ({count} occurrences in total). Reopening. Newest occurrence:"
            )
        elif fix is not None:
            headline = (
                f"**otel-autoheal: regression.** This issue was closed by {_fixes.fix_reference(fix)}, and the "
                f"error was seen again after it (version `{version}`; {count} occurrences in total). "
                "Reopening. Newest occurrence:"
            )
        else:
            closed_in = _safe(row.closed_version) if row.closed_version else "an unknown version"
            headline = (
                f"**otel-autoheal: regression.** Seen again after this issue was closed (closed in version "
                f"`{closed_in}`, seen in `{version}`; {count} occurrences in total). Reopening. Newest occurrence:"
            )
        self._post_comment(item, number, self._comment_text(item, headline))
        now = time.time()
        with self.store.transaction() as conn:
            if fix is not None:
                Outbox.set_fix(conn, fix.id, state="regressed", regressed_version=p.get("version") or "")
            Outbox.set_issue(conn, fp, state="open", state_reason="reopened", last_comment_at=now,
                             state_checked_at=now)
        logger.info("reopened issue #%s (regression of %s)", number, fp[:12])
        return "reopened"

    def _do_verify(self, item: OutboxItem, number: int | None) -> str:
        """Post the one closing comment of a fix whose group stayed silent for the whole window."""
        assert number is not None
        fp = item.fingerprint
        row = self._refresh(fp, number)  # reopened meanwhile by someone: the fix ended there
        with self.store.transaction() as conn:
            fix = Outbox.fix_by_id(conn, int(item.payload.get("fix", 0)))
        if fix is None or fix.state != "verifying":
            return f"fix is {fix.state if fix else 'gone'}: no closing comment"
        if row.state != "closed":
            return "issue open again: no closing comment"
        group = self.store.group_by_fingerprint(fp)
        if group is None:
            return "group gone: no closing comment"
        now = time.time()
        due = max(fix.deployed_at or now, group.last_seen) + self.config.verify_window
        if item.attempts == 0 and due > now:  # an (older-version) occurrence since it was queued
            with self.store.transaction() as conn:
                Outbox.set_fix(conn, fix.id, state="deployed")
            self._dirty = True
            return "not silent for the whole window yet"
        text = f"<!-- autoheal:outbox={item.id} -->\n" + _fixes.verification_text(fix, group, now)
        self._post_comment(item, number, text)
        with self.store.transaction() as conn:
            Outbox.set_fix(conn, fix.id, state="verified")
            Outbox.set_issue(conn, fp, last_comment_at=time.time())
        logger.info("fix for issue #%s verified (%s)", number, _fixes.fix_reference(fix))
        return "fix verified: closing comment posted"

    def _do_handoff(self, item: OutboxItem, number: int | None) -> str:
        assert number is not None
        fp, cfg = item.fingerprint, self.config
        row = self._refresh(fp, number)
        if row.state == "closed":
            return self._handoff_outcome(fp, "skipped_closed")
        if any(a in COPILOT_LOGINS for a in self._assignees):
            return self._handoff_outcome(fp, "already_assigned")
        if not self._still_ours(fp):
            return self._handoff_outcome(fp, "skipped_unverified", "the issue's author or header is not ours")
        prs = self.client.open_pr_references(number)
        if prs:
            return self._handoff_outcome(fp, "skipped_open_pr", f"open PR #{prs[0]} references the issue")
        assignment = _handoff.agent_assignment(cfg)
        if cfg.handoff_dry_run:
            logger.info(
                "dry run: would assign issue #%s to %s with agent_assignment target_repo=%s base_branch=%s",
                number,
                "copilot-swe-agent[bot]",
                assignment["target_repo"],
                assignment.get("base_branch", "(default)"),
            )
            return self._handoff_outcome(fp, "dry_run")
        wait = self.budget.handoff_wait(time.time())
        if wait > 0:
            raise _Deferred(time.time() + wait, "daily hand-off budget used up")
        try:
            with self._write("assign"):
                self.budget.record("handoff")
                self.outbox.begin_attempt(item.id)
                logins = self.client.assign_copilot(number, assignment)
        except _Stopping:
            raise
        except Exception as exc:
            f = classify(exc)
            if f.kind == "forbidden":
                self._handoff_error = self._redact(f"issue #{number}: {f.message}. {_handoff.FORBIDDEN_HELP}")
                logger.error("Copilot hand-off refused: %s", self._handoff_error)
                return self._handoff_outcome(fp, "forbidden")
            if f.kind in ("rejected", "not_found"):
                self._handoff_error = self._redact(f"issue #{number}: {f.message}")
                return self._handoff_outcome(fp, "failed")
            raise
        if not any(a in COPILOT_LOGINS for a in logins):
            self._handoff_error = f"issue #{number}: {_handoff.NOT_ASSIGNABLE_HELP}"
            logger.error("Copilot hand-off had no effect: %s", self._handoff_error)
            return self._handoff_outcome(fp, "not_assignable")
        logger.info("assigned issue #%s to the Copilot coding agent", number)
        return self._handoff_outcome(fp, "assigned")

    def _do_data(self, item: OutboxItem, number: int | None) -> str:
        """Rewrite the ``autoheal:data`` block (line 2) with the group's current facts for the gate."""
        assert number is not None
        row = self._refresh(item.fingerprint, number)
        if row.state == "closed":
            return "issue closed: data block left as it was"
        if not self._still_ours(item.fingerprint):
            return "the issue's author or header is not ours: data block not refreshed"
        body = str(self._issue.get("body") or "")
        new = replace_data(body, item.payload)
        if new is None or new == body:
            return "data block already current"
        with self._write("edit"):
            self.outbox.begin_attempt(item.id)
            self.client.update_body(number, new)
        return "data block refreshed"

    def _handoff_outcome(self, fp: str, outcome: str, note: str = "") -> str:
        self.outbox.update_issue(fp, handoff=outcome)
        if self._handoff_error and outcome in ("forbidden", "failed", "not_assignable"):
            self._persist("handoff_error", self._handoff_error)
        return f"handoff {outcome}{': ' + note if note else ''}"

    # ------------------------------------------------------------------ helpers

    def _redact(self, text: str) -> str:
        token = self.config.token
        return text.replace(token, "[REDACTED]") if token and token in text else text

    def _error(self, message: str) -> None:
        self._last_error = self._redact(message)
        self._last_error_at = time.time()
        self._persist("last_error", self._last_error)

    def _persist(self, key: str, value: str) -> None:
        """Keep what ``otel-autoheal status`` (another process) should show; never the token."""
        try:
            self.outbox.set_meta(key, json.dumps({"message": self._redact(value), "at": time.time()}))
        except Exception:  # status bookkeeping must never break the worker
            logger.debug("cannot persist %s", key, exc_info=True)

