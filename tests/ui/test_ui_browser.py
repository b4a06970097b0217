"""The page in real headless Chromium, fed by real OTLP traffic to the real service."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from polling import wait_for
from ui_support import Browser, get, get_json, send_error

SERVICES = ("checkout", "billing", "search")
TRACE_TEMPLATE = "http://jaeger.test:16686/trace/{trace_id}"


def _groups_total(endpoint: str) -> int:
    return int(get_json(f"{endpoint}/api/groups?per_page=1")["total"])


def _fill(endpoint: str, groups: int) -> None:
    """``groups`` distinct errors (an exception type each) spread over three services."""
    for index in range(groups):
        service = SERVICES[index % len(SERVICES)]
        send_error(endpoint, service=service, exc_type=f"Err{index:03d}Error", message=f"order {index} failed",
                   version="2.0.0", frames=("handle", f"step_{index % 7}"))
    wait_for(lambda: _groups_total(endpoint) >= groups, 120, 0.5, f"{groups} groups")


def test_list_filter_group_page_and_live_update(autoheal_factory: Callable[..., object], screenshot_dir: Path,
                                                tmp_path: Path, backend_env: dict[str, str]) -> None:
    """On SQLite and PostgreSQL, a few hundred groups from OTLP: list, filters, keyboard, group page, live count."""
    service = autoheal_factory(env={"AUTOHEAL_TRACE_URL_TEMPLATE": TRACE_TEMPLATE, **backend_env})
    endpoint = service.http_endpoint  # type: ignore[attr-defined]
    _fill(endpoint, 300)
    # One group with history across two versions, logs before each error.
    trace_ids = [send_error(endpoint, service="checkout", exc_type="CartTotalError", message=f"cart {n} is empty",
                            version=version, logs=(f"loading cart {n}", f"applying coupon SPRING{n}"))
                 for n, version in enumerate(("1.4.0", "1.4.0", "1.5.0"))]
    wait_for(lambda: get_json(f"{endpoint}/api/groups?q=CartTotalError")["groups"][0]["count"] == 3
             if get_json(f"{endpoint}/api/groups?q=CartTotalError")["groups"] else False, 60, 0.3, "CartTotalError × 3")

    # Without JavaScript: the server's HTML already holds the rows.
    status, _, html = get(f"{endpoint}/")
    assert status == 200 and html.count(b"<tr data-group=") == 50

    browser = Browser()
    try:
        assert browser.call("goto", url=f"{endpoint}/")["status"] == 200
        assert browser.call("count", selector="tr[data-group]") == 50
        assert re.match(r"301 groups, page 1 of 7", browser.call("text", selector="#total").strip())
        assert browser.call("count", selector="tr[data-group] svg.spark path") == 50  # every group has a bar this hour
        browser.call("screenshot", path=str(tmp_path / "list.png"))

        # Keyboard: the first Tab reaches the skip link.
        browser.call("press", key="Tab")
        assert browser.call("focused")["text"] == "Skip to content"

        # Filter by service (the select applies on change), then by free text.
        assert browser.call("select", selector="#f-service", value="billing")["status"] == 200
        services = browser.call("texts", selector="tr[data-group] .service")
        assert services and set(services) == {"billing"}
        assert browser.call("text", selector="#total").startswith("100 groups")
        browser.call("goto", url=f"{endpoint}/")
        browser.call("fill", selector="#f-q", value="CartTotalError")
        browser.call("eval", expression="document.querySelector('#f-q').focus()")
        assert browser.call("pressNavigating", key="Enter")["status"] == 200
        assert browser.call("count", selector="tr[data-group]") == 1
        # Sorting by count puts the three-times group first.
        browser.call("goto", url=f"{endpoint}/?sort=count")
        assert "CartTotalError" in browser.call("text", selector="tr[data-group] td.title a")

        # Open the group with the keyboard.
        browser.call("eval", expression="document.querySelector('tr[data-group] td.title a').focus()")
        opened = browser.call("pressNavigating", key="Enter")
        assert re.search(r"/groups/\d+$", opened["url"]), opened
        assert browser.call("text", selector="#group-count").strip() == "3"
        assert browser.call("count", selector="figure.chart svg rect.bar") >= 1
        markers = browser.call("texts", selector="figure.chart g.marker text")
        assert {"1.4.0", "1.5.0"} <= set(markers)
        href = browser.call("attr", selector="a.trace", name="href")
        assert href == TRACE_TEMPLATE.format(trace_id=trace_ids[-1])
        assert browser.call("count", selector="ol.frames li.inapp") >= 2
        assert browser.call("count", selector="ol.frames li.lib") >= 1
        assert "applying coupon SPRING2" in browser.call("text", selector="table.logs")
        assert "in-app frames" in browser.call("text", selector="dl.grouping")
        browser.call("screenshot", path=str(tmp_path / "group.png"), fullPage=True)

        # Live: a new occurrence shows up without a reload.
        browser.call("eval", expression="window.__stillSamePage = 42")
        new_trace = send_error(endpoint, service="checkout", exc_type="CartTotalError", message="cart 9 is empty",
                               version="1.5.0")
        assert browser.call("waitText", selector="#group-count", different="3", timeout=60000).strip() == "4"
        assert browser.call("eval", expression="window.__stillSamePage") == 42
        assert browser.call("text", selector="table.occurrences tbody tr td.mono").strip() == new_trace

        # Phone width, dark mode: still one column and nothing wider than the screen.
        browser.call("colorScheme", scheme="dark")
        browser.call("viewport", width=390, height=844)
        browser.call("goto", url=f"{endpoint}/")
        overflow = browser.call("eval", expression="document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the list is {overflow}px wider than a phone screen"
        background = browser.call("eval", expression="getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        browser.call("screenshot", path=str(tmp_path / "list-phone-dark.png"), fullPage=True)

        events = browser.call("events")
        assert events == {"dialogs": [], "consoleErrors": [], "pageErrors": []}
    finally:
        browser.close()
    if not backend_env:  # the screenshots kept are the SQLite run's (the pages are the same)
        for name in ("list.png", "group.png", "list-phone-dark.png"):
            shutil.copy(tmp_path / name, screenshot_dir / name)
