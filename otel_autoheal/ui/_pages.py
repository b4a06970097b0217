"""The page's routes: HTML pages, the JSON API, static files, login; access and headers on each.

Every handler does its reading and rendering in the page's own small thread pool (store reads
and Jinja2 block), so the event loop that also serves OTLP only passes bytes. Responses carry
``SECURITY_HEADERS`` and ``Server-Timing`` (what the server spent, read by ``bench/ui.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otel_autoheal.errors import StateError
from otel_autoheal.metrics import Metrics
from otel_autoheal.sinks.base import Sink
from otel_autoheal.ui import _facts, _fixway, _svg
from otel_autoheal.ui._access import COOKIE, SECURITY_HEADERS, Access
from otel_autoheal.ui._markdown import render_markdown

__all__ = ["Pages"]

log = logging.getLogger("otel_autoheal.ui")

_HERE = Path(__file__).parent
_STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
#: Threads rendering pages at once; more requests wait their turn (the page is for people, not load).
_THREADS = 2
#: Largest login form body read.
_MAX_FORM_BYTES = 4096
#: Seconds a wrong token waits before its answer (guessing costs time; the wait holds no thread).
_WRONG_TOKEN_DELAY = 1.0
#: Counters shown on the status page, with their labels.
_COUNTERS = (
    ("autoheal_spans_received_total", "spans received"),
    ("autoheal_logs_received_total", "log records received"),
    ("autoheal_requests_rejected_total", "requests rejected"),
    ("autoheal_exceptions_seen_total", "exceptions seen"),
    ("autoheal_occurrences_total", "occurrences recorded"),
    ("autoheal_issues_filed_total", "issues filed (this run)"),
    ("autoheal_records_dropped_total", "records dropped"),
    ("autoheal_traces_evicted_total", "traces processed early (count bound)"),
    ("autoheal_traces_evicted_bytes_total", "traces processed early (byte bound)"),
    ("autoheal_late_traces_total", "late trace parts merged"),
    ("autoheal_journal_replayed_total", "journal entries replayed"),
    ("autoheal_pipeline_errors_total", "pipeline errors"),
)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _absolute(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _relative(ts: float, now: float | None = None) -> str:
    seconds = (time.time() if now is None else now) - ts
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        return "just now"
    return f"in {text}" if future else f"{text} ago"


def _nanos(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


class Pages:
    """The routes of the page, bound to one store, sink and service."""

    def __init__(self, store: _facts.PageStore, sink: Sink, metrics: Metrics, health: Callable[[], dict[str, Any]],
                 access: Access, trace_url_template: str) -> None:
        self.store = store
        self.sink = sink
        self.metrics = metrics
        self.health = health
        self.access = access
        self.trace_url_template = trace_url_template
        #: Where the state is, as ``otel-autoheal status`` says it (a file, or a URL without its password).
        self.state_path = str(store.path)
        self.github_web = _fixway.github_web_url(sink)
        #: Read once: served from memory, never from disk on the event loop.
        self.static = {name: (_HERE.joinpath("static", name).read_bytes(), kind) for name, kind in _STATIC.items()}
        self.pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="autoheal-ui")
        self.env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(iso=_iso, absolute=_absolute, relative=_relative, nanos=_nanos,
                                markdown=render_markdown)
        self.env.globals.update(states=_fixway.STATES, trace_url=self.trace_url, urlencode=urllib.parse.urlencode,
                                github_web=self.github_web, token_required=bool(access.token))

    def trace_url(self, trace_id: str) -> str:
        """The configured trace viewer's link, only when it is http(s) (it is configuration, but still)."""
        if not trace_id or not self.trace_url_template.lower().startswith(("http://", "https://")):
            return ""
        return self.trace_url_template.replace("{trace_id}", urllib.parse.quote(trace_id, safe=""))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ plumbing

    def routes(self) -> list[BaseRoute]:
        guarded = self._guarded
        return [
            Route("/", guarded(self._list_page), methods=["GET"]),
            Route("/groups/{group_id:int}", guarded(self._group_page), methods=["GET"]),
            Route("/status", guarded(self._status_page), methods=["GET"]),
            Route("/api/groups", guarded(self._api_groups, api=True), methods=["GET"]),
            Route("/api/groups/{group_id:int}", guarded(self._api_group, api=True), methods=["GET"]),
            Route("/api/groups/{group_id:int}/occurrences", guarded(self._api_occurrences, api=True), methods=["GET"]),
            Route("/api/live", guarded(self._api_live, api=True), methods=["GET"]),
            Route("/api/status", guarded(self._api_status, api=True), methods=["GET"]),
            Route("/static/{name}", self._headers(self._static), methods=["GET"]),
            Route("/login", self._headers(self._login), methods=["GET", "POST"]),
            Route("/logout", self._headers(self._logout), methods=["POST"]),
            # The rest of the page's own paths: its 404, with its headers (other paths stay the OTLP app's).
            Route("/groups/{rest:path}", guarded(self._no_page), methods=["GET"]),
            Route("/api/{rest:path}", guarded(self._no_page, api=True), methods=["GET"]),
        ]

    def _headers(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def with_headers(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            return response

        return with_headers

    def _guarded(self, handler: Callable[[Request], Response], api: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Access check first, then ``handler`` in the page's pool."""
        async def guarded(request: Request) -> Response:
            verdict = self.access.verdict(request.headers.get("host", ""), request.headers.get("authorization", ""),
                                          request.cookies.get(COOKIE, ""))
            if verdict != "ok":
                return self._refusal(request, verdict, api)
            try:
                return await asyncio.get_running_loop().run_in_executor(self.pool, handler, request)
            except RuntimeError:  # the pool is shut down: the service is stopping
                return Response("stopping", 503, media_type="text/plain")
            except StateError as exc:  # e.g. PostgreSQL restarting: say so, and the next request tries again
                message = f"The state cannot be read just now ({exc}); try again in a moment."
                if api:
                    return self._json({"error": message}, 503, {"Retry-After": "5"})
                return self._html("error.html", {"title": "State unavailable", "message": message, "live": None}, 503)

        return self._headers(guarded)

    def _refusal(self, request: Request, verdict: str, api: bool) -> Response:
        if verdict == "login":
            if api:
                return self._json({"error": "missing or wrong token: send Authorization: Bearer <ui_token>"}, 401,
                                  {"WWW-Authenticate": "Bearer"})
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Response(status_code=303, headers={"Location": "/login?" + urllib.parse.urlencode({"next": target}),
                                                      "Cache-Control": "no-store"})
        if verdict == "off":
            message = ("The page is off on this address because it is not loopback and no ui_token is set: "
                       "set ui_token (AUTOHEAL_UI_TOKEN), or serve the page on 127.0.0.1 with ui_address.")
        else:
            message = ("This page answers only under a loopback host name (localhost, 127.0.0.1, [::1]); set "
                       "ui_token (AUTOHEAL_UI_TOKEN) to open it under other names.")
        if api:
            return self._json({"error": message}, 403)
        return self._html("error.html", {"title": "Forbidden", "message": message, "live": None}, 403)

    def _html(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        text = self.env.get_template(template).render(**context)
        return Response(text, status, {"Cache-Control": "no-store"}, "text/html; charset=utf-8")

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(data, default=str), status, {"Cache-Control": "no-store", **(headers or {})},
                        "application/json")

    def _not_found(self, what: str, api: bool) -> Response:
        if api:
            return self._json({"error": f"no {what}"}, 404)
        return self._html("error.html", {"title": "Not found", "message": f"There is no {what}.", "live": None}, 404)

    # ------------------------------------------------------------------ pages

    def _list(self, request: Request) -> _facts.ListPage:
        return _facts.list_groups(self.store, _facts.ListQuery.from_params(request.query_params), self.github_web)

    def _list_page(self, request: Request) -> Response:
        page = self._list(request)
        sparks = {g["id"]: _svg.sparkline(g["spark"]) for g in page.groups}
        return self._html("list.html", {"page": page, "sparks": sparks, "sorts": _facts.SORTS,
                                        "live": page.token, "nav": "groups"})

    def _group_page(self, request: Request) -> Response:
        group_id = int(request.path_params["group_id"])
        facts = _facts.group_facts(self.store, group_id, request.query_params.get("range", "14d"))
        if facts is None:
            return self._not_found(f"group {group_id}", api=False)
        size = _facts.CHARTS[facts.chart_range][0]
        chart = _svg.chart(facts.chart, size, facts.versions)
        return self._html("group.html", {"f": facts, "g": facts.group, "chart": chart, "ranges": _facts.CHARTS,
                                         "live": facts.token, "explain": _explain(facts.grouping_fields)})

    def _no_page(self, request: Request) -> Response:
        path = request.url.path
        return self._not_found(f"page {path[:100]!r}", api=path.startswith("/api/"))

    def _status(self) -> dict[str, Any]:
        """The facts of ``otel-autoheal status``, from the running sink, plus health and ingest counters."""
        info: dict[str, Any] = {"sink": self.sink.name, "state": self.state_path}
        try:
            info.update(self.sink.status())
        except Exception as exc:  # a status page must show even a broken sink
            info["status_error"] = f"{type(exc).__name__}: {exc}"
        info["groups"] = self.store.group_count()
        info["health"] = self.health()
        info["ingest"] = {label: int(self.metrics.value(name)) for name, label in _COUNTERS}
        return info

    def _status_page(self, request: Request) -> Response:
        return self._html("status.html", {"info": self._status(), "live": None, "nav": "status"})

    # ------------------------------------------------------------------ API

    def _api_groups(self, request: Request) -> Response:
        page = self._list(request)
        query = page.query
        size = _facts.SPARKS[query.spark][0]
        return self._json({
            "total": page.total, "page": query.page, "per_page": query.per_page, "pages": page.pages,
            "sort": query.sort, "spark": {"bucket_seconds": size, "buckets": _facts.SPARKS[query.spark][1]},
            "groups": [{
                "id": g["id"], "fingerprint": g["fingerprint"], "title": g["title"], "count": g["count"],
                "first_seen": _iso(g["first_seen"]), "last_seen": _iso(g["last_seen"]), "service": g["service"],
                "exception_type": g["exception_type"], "source": g["source"], "versions": g["versions"],
                "sparkline": g["spark"], "way": g["way"].as_json(self.github_web),
                "url": f"/groups/{g['id']}", "api_url": f"/api/groups/{g['id']}",
            } for g in page.groups],
        })

    def _api_group(self, request: Request) -> Response:
        group_id = int(request.path_params["group_id"])
        facts = _facts.group_facts(self.store, group_id)
        if facts is None:
            return self._not_found(f"group {group_id}", api=True)
        g = facts.group
        return self._json({
            "id": g["id"], "fingerprint": g["fingerprint"], "title": g["title"], "count": g["count"],
            "first_seen": _iso(g["first_seen"]), "last_seen": _iso(g["last_seen"]),
            "first_processed": _iso(g["first_processed"]), "last_processed": _iso(g["last_processed"]),
            "service": g["service"], "exception_type": g["exception_type"], "source": g["source"],
            "versions": [{"version": v, "first_seen": _iso(t)} for v, t in facts.versions],
            "trace_ids": facts.trace_ids, "grouping_fields": facts.grouping_fields,
            "way": facts.way.as_json(self.github_web), "timeline": [
                {"time": _iso(e["time"]), "what": e["what"]} for e in facts.timeline],
            "latest": facts.detail, "body": facts.body,
        })

    def _api_occurrences(self, request: Request) -> Response:
        group_id = int(request.path_params["group_id"])
        data = _facts.occurrence_facts(self.store, group_id)
        if data is None:
            return self._not_found(f"group {group_id}", api=True)
        for item in data["recent"]:
            item["time"], item["processed"] = _iso(item["time"]), _iso(item["processed"])
            item["trace_url"] = self.trace_url(item["trace_id"]) or None
        for item in (*data["hours"], *data["days"]):
            item["start"] = _iso(item["start"])
        return self._json(data)

    def _api_live(self, request: Request) -> Response:
        return self._json({"token": _facts.live_token(self.store)})

    def _api_status(self, request: Request) -> Response:
        return self._json(self._status())

    # ------------------------------------------------------------------ static, login

    async def _static(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            return Response("not found", 404, media_type="text/plain")
        return Response(found[0], headers={"Cache-Control": "no-cache"}, media_type=found[1])

    async def _login(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next", "/"))
        if not self.access.token:
            return Response(status_code=303, headers={"Location": target})
        error = ""
        if request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > _MAX_FORM_BYTES:
                    return Response("form too large", 413, media_type="text/plain")
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            target = _safe_next((form.get("next") or ["/"])[0])
            if self.access.token_matches((form.get("token") or [""])[0]):
                response = Response(status_code=303, headers={"Location": target})
                response.set_cookie(COOKIE, self.access.session, httponly=True, samesite="strict", path="/",
                                    secure=request.url.scheme == "https")
                return response
            await asyncio.sleep(_WRONG_TOKEN_DELAY)
            error = "That is not the token (ui_token / AUTOHEAL_UI_TOKEN)."
        text = self.env.get_template("login.html").render(next=target, error=error, live=None)
        return Response(text, 401 if error else 200, {"Cache-Control": "no-store"}, "text/html; charset=utf-8")

    async def _logout(self, request: Request) -> Response:
        response = Response(status_code=303, headers={"Location": "/login"})
        response.delete_cookie(COOKIE, path="/")
        return response


def _safe_next(target: str) -> str:
    """Only a path on this server: never ``//other.site`` or ``/\\other.site`` (an open redirect)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


def _explain(fields: list[str]) -> list[tuple[str, str]]:
    """Each grouping key part with what it means to a reader."""
    meaning = {
        "service.name": "the service that raised it",
        "exception.type": "the exception type (its short name, without the module)",
        "message template": "the message with the data masked (there were no in-app frames to tell errors apart)",
    }
    out = []
    for field in fields:
        key = field.partition("=")[0]
        if key in meaning:
            text = meaning[key]
        elif key == "in-app frames":
            text = "your code's frames (module or project-relative file and function, no line numbers), innermost last"
        elif key == "frames":
            text = "the frames, library ones included because none was in-app (no line numbers), innermost last"
        else:
            text = "part of the grouping key"
        out.append((field, text))
    return out
