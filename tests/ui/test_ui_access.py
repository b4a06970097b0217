"""Who may see the page, the headers it sends, where it is served, and that OTLP is unchanged beside it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otel_autoheal.ui._access import Access
from otlp_payloads import post
from polling import wait_for
from ui_support import ROOT, Browser, get, get_json, send_error

TOKEN = "ui-token-for-tests-7f3a"
PAGE_PATHS = ("/", "/groups/1", "/status", "/api/groups", "/api/groups/1", "/api/groups/1/occurrences", "/api/live",
              "/api/status")


def _one_group(endpoint: str, headers: dict[str, str] | None = None) -> None:
    send_error(endpoint, service="shop", exc_type="KeyError", message="'sku'")
    wait_for(lambda: get_json(f"{endpoint}/api/groups", headers)["total"] == 1, 60, 0.3, "one group")


def test_every_page_response_carries_the_security_headers(autoheal_factory: Callable[..., Any],
                                                          backend_env: dict[str, str]) -> None:
    """On either backend, CSP, nosniff and no-referrer on pages, API, static files, login and 404s."""
    endpoint = autoheal_factory(env=backend_env).http_endpoint
    _one_group(endpoint)
    for path in (*PAGE_PATHS, "/static/ui.css", "/static/ui.js", "/login", "/groups/999", "/api/groups/999",
                 "/groups/not-a-number", "/api/nothing/here"):
        status, headers, _ = get(endpoint + path)
        assert status in (200, 303, 404), (path, status)
        csp = headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("referrer-policy") == "no-referrer", path
        assert re.match(r"app;dur=\d", headers.get("server-timing", "")), path


def test_loopback_page_refuses_foreign_host_names(autoheal: Any) -> None:
    """Without a token the page answers only under loopback host names (no DNS rebinding)."""
    endpoint = autoheal.http_endpoint
    assert get(f"{endpoint}/", {"Host": f"localhost:{autoheal.http_port}"})[0] == 200
    assert get(f"{endpoint}/", {"Host": f"[::1]:{autoheal.http_port}"})[0] == 200
    for path in ("/", "/api/groups"):
        status, _, body = get(endpoint + path, {"Host": f"attacker.example:{autoheal.http_port}"})
        assert status == 403 and b"loopback" in body, path


def test_token_required_login_form_cookie_and_bearer(autoheal_factory: Callable[..., Any]) -> None:
    """With ui_token, pages redirect to a login form, the API wants the bearer token, and the cookie is HttpOnly."""
    service = autoheal_factory(env={"AUTOHEAL_UI_TOKEN": TOKEN})
    endpoint = service.http_endpoint
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    _one_group(endpoint, bearer)
    for path in PAGE_PATHS:
        status, headers, body = get(endpoint + path)
        if path.startswith("/api/"):
            assert status == 401 and headers.get("www-authenticate") == "Bearer", path
            assert b"KeyError" not in body
        else:
            assert status == 303 and headers["location"].startswith("/login?next="), path
        assert get(endpoint + path, {"Authorization": "Bearer wrong"})[0] in (303, 401), path
        assert get(endpoint + path, bearer)[0] == 200, path
    # OTLP is not behind the page's token.
    send_error(endpoint, service="shop", exc_type="KeyError", message="'sku'")

    browser = Browser()
    try:
        landed = browser.call("goto", url=f"{endpoint}/groups/1")
        assert "/login?next=%2Fgroups%2F1" in landed["url"]
        browser.call("fill", selector="#token", value="not-the-token")
        assert browser.call("pressNavigating", key="Enter")["status"] == 401
        assert "not the token" in browser.call("text", selector=".error")
        browser.call("fill", selector="#token", value=TOKEN)
        answer = browser.call("pressNavigating", key="Enter")
        assert answer["url"] == f"{endpoint}/groups/1" and answer["status"] == 200
        assert "KeyError" in browser.call("text", selector="h1")
        assert browser.call("eval", expression="document.cookie") == "", "the session cookie must be HttpOnly"
        # An open redirect is refused: the login only ever returns to a path on this server.
        browser.call("goto", url=f"{endpoint}/login?next=//evil.example/x")
        assert browser.call("attr", selector="input[name=next]", name="value") == "/"
        assert browser.call("events")["dialogs"] == []
    finally:
        browser.close()


def test_access_decision_for_non_loopback_addresses() -> None:
    """On a non-loopback address the page is off without a token and asks for it with one (tests bind loopback only)."""
    assert Access("0.0.0.0", "").verdict("example.org", "", "") == "off"
    assert Access("192.0.2.10", "").verdict("192.0.2.10:4318", "", "") == "off"
    with_token = Access("0.0.0.0", TOKEN)
    assert with_token.verdict("example.org", "", "") == "login"
    assert with_token.verdict("example.org", f"Bearer {TOKEN}", "") == "ok"
    assert with_token.verdict("example.org", "", with_token.session) == "ok"
    assert with_token.verdict("example.org", "", TOKEN) == "login", "the cookie holds an HMAC, not the token"
    assert Access("127.0.0.1", "").verdict("127.0.0.1:4318", "", "") == "ok"
    assert Access("::1", "").verdict("[::1]:4318", "", "") == "ok"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_page_on_its_own_address_or_off(autoheal_factory: Callable[..., Any]) -> None:
    """``--ui HOST:PORT`` moves the page off the OTLP port, ``--ui off`` removes it; OTLP works in both."""
    port = _free_port()
    moved = autoheal_factory("--ui", f"127.0.0.1:{port}")
    send_error(moved.http_endpoint, service="shop", exc_type="KeyError", message="'sku'")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/groups")["total"] == 1, 60, 0.3, "group on the page's port")
    assert get(f"http://127.0.0.1:{port}/")[0] == 200
    assert get(f"{moved.http_endpoint}/")[0] == 404
    assert get(f"{moved.http_endpoint}/api/groups")[0] == 404
    assert f"web page: http://127.0.0.1:{port}/" in moved.log_text()

    off = autoheal_factory("--ui", "off")
    send_error(off.http_endpoint, service="shop", exc_type="KeyError", message="'sku'")
    off.wait_for_issues(1)
    assert get(f"{off.http_endpoint}/")[0] == 404
    assert get(f"{off.http_endpoint}/healthz")[0] == 200


def test_bad_or_busy_page_address_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """``--ui`` with a malformed or busy address ends the start with exit 2 and a line naming ui_address."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        for value, problem in (("nonsense", "expected HOST:PORT"), (f"127.0.0.1:{busy.getsockname()[1]}", "cannot listen")):
            state = tmp_path / f"state-{problem.split()[0]}"
            result = subprocess.run(
                [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                 "--state", str(state), "--ui", value], capture_output=True, text=True, timeout=60, cwd=ROOT,
                env={k: v for k, v in os.environ.items() if not k.startswith("AUTOHEAL_")})
            assert result.returncode == 2, result.stderr
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("otel-autoheal: ui_address: ") and problem in last, last
            assert not state.exists(), "a failed start leaves no state directory behind"


def test_otlp_endpoints_unchanged_next_to_the_page(autoheal_factory: Callable[..., Any]) -> None:
    """CORS preflight and the ingest token keep working on the port that also serves the page."""
    service = autoheal_factory("--cors-origin", "http://shop.test", env={"AUTOHEAL_INGEST_TOKEN": "ingest-secret"})
    endpoint = service.http_endpoint
    request = urllib.request.Request(f"{endpoint}/v1/traces", method="OPTIONS", headers={
        "Origin": "http://shop.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://shop.test"
    assert post(f"{endpoint}/v1/traces", {"resourceSpans": []})[0] == 401
    assert post(f"{endpoint}/v1/traces", {"resourceSpans": []},
                headers={"Authorization": "Bearer ingest-secret"})[0] == 200
    assert get(f"{endpoint}/")[0] == 200
