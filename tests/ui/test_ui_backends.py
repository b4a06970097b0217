"""The page, its API, its live token and the ``issues``/``show``/``status`` commands on each state backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from polling import wait_for
from tests.postgres_server import postgres_server
from ui_support import ROOT, get, get_json, send_error


def _cli(service: Any, backend_env: dict[str, str], *args: str) -> str:
    """Run an ``otel-autoheal`` command against the service's state, named on the command line."""
    url = backend_env.get("AUTOHEAL_DATABASE_URL")
    where = ["--database-url", url] if url else ["--state", str(service.state_dir)]
    env = {k: v for k, v in service.env.items() if k != "AUTOHEAL_DATABASE_URL"}
    out = subprocess.run([sys.executable, "-m", "otel_autoheal", args[0], *where, *args[1:]], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_page_api_live_token_and_commands_on_each_backend(autoheal_factory: Callable[..., Any],
                                                          backend_env: dict[str, str]) -> None:
    """Groups sent over OTLP show on the page, the API and the commands; a new occurrence moves the live token."""
    service = autoheal_factory(env=backend_env)
    endpoint = service.http_endpoint
    for n in range(2):
        send_error(endpoint, service="shop", exc_type="StockError", message=f"sku {n} sold out",
                   logs=(f"reserving sku {n}",))
    send_error(endpoint, service="billing", exc_type="CardDeclined", message="card 4242 declined", source="browser")
    wait_for(lambda: [g["count"] for g in get_json(f"{endpoint}/api/groups?sort=count")["groups"]] == [2, 1],
             60, 0.3, "two groups, counted 2 and 1")

    listed = get_json(f"{endpoint}/api/groups?sort=count")
    stock = listed["groups"][0]
    assert "StockError" in stock["title"] and stock["way"]["state"] == "local"
    assert sum(stock["sparkline"]) == 2 and stock["versions"] == ["1.0.0"]
    found = get_json(f"{endpoint}/api/groups?q=carddeclined")["groups"]
    assert len(found) == 1 and "CardDeclined" in found[0]["title"]
    assert get_json(f"{endpoint}/api/groups?source=browser")["total"] == 1
    assert get_json(f"{endpoint}/api/groups?state=local")["total"] == 2
    assert get_json(f"{endpoint}/api/groups?state=filed")["total"] == 0

    group = get_json(f"{endpoint}{stock['api_url']}")
    assert group["count"] == 2 and group["latest"]["logs"][0]["body"].startswith("reserving sku")
    history = get_json(f"{endpoint}{stock['api_url']}/occurrences")
    assert len(history["recent"]) == 2 and sum(h["count"] for h in history["hours"]) == 2
    assert len(history["hours"]) == 48 and len(history["days"]) == 90
    status, _, html = get(f"{endpoint}{stock['url']}")
    assert status == 200 and b"sku 1 sold out" in html

    token = get_json(f"{endpoint}/api/live")["token"]
    assert get_json(f"{endpoint}/api/live")["token"] == token
    send_error(endpoint, service="shop", exc_type="StockError", message="sku 7 sold out")
    wait_for(lambda: get_json(f"{endpoint}/api/live")["token"] != token, 60, 0.3, "the live token to move")
    assert get_json(f"{endpoint}{stock['api_url']}")["count"] == 3

    facts = get_json(f"{endpoint}/api/status")
    url = backend_env.get("AUTOHEAL_DATABASE_URL")
    assert facts["groups"] == 2 and facts["state"] == (url or str(service.state_dir / "autoheal.sqlite3"))
    status, _, html = get(f"{endpoint}/status")
    assert status == 200 and facts["state"].encode() in html

    issues = json.loads(_cli(service, backend_env, "issues", "--json"))
    assert sorted(i["count"] for i in issues) == [1, 3]
    assert "sku 7 sold out" in _cli(service, backend_env, "show", str(stock["id"]))
    assert json.loads(_cli(service, backend_env, "status", "--json"))["groups"] == 2


def test_page_says_when_postgres_is_away_and_recovers(autoheal_factory: Callable[..., Any]) -> None:
    """With PostgreSQL stopped the page and API answer 503 naming the database (no password); restarted, 200 again."""
    with postgres_server() as server:
        url = server.new_database().replace("autoheal@", "autoheal:pw-not-shown@")
        service = autoheal_factory(env={"AUTOHEAL_DATABASE_URL": url})
        endpoint = service.http_endpoint
        send_error(endpoint, service="shop", exc_type="StockError", message="sku 1 sold out")
        wait_for(lambda: get_json(f"{endpoint}/api/groups")["total"] == 1, 60, 0.3, "one group")
        server.stop_server("immediate")
        status, headers, body = get(f"{endpoint}/api/groups")
        assert status == 503 and headers.get("retry-after") == "5", (status, body[:300])
        error = json.loads(body)["error"]
        assert "cannot be read" in error and "127.0.0.1" in error and "pw-not-shown" not in error
        status, headers, html = get(f"{endpoint}/")
        assert status == 503 and b"State unavailable" in html and "default-src 'none'" in headers["content-security-policy"]
        server.start()
        wait_for(lambda: get(f"{endpoint}/api/groups")[0] == 200, 60, 0.5, "the page to read again")
        assert get_json(f"{endpoint}/api/groups")["total"] == 1
