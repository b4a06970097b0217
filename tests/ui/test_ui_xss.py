"""Error text is attacker-controlled: hostile payloads in every field must never execute on the page."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from otlp_payloads import attrs, log_record, logs_payload, new_span_id, new_trace_id, post, span, traces_payload
from polling import wait_for
from ui_support import Browser, get_json

#: Each payload calls alert() (a dialog the driver records) if it ever runs.
PAYLOADS = (
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=alert('xss-img')>",
    "<svg onload=alert('xss-svg')><circle r=1 /></svg>",
    "<svg><script>alert('xss-svg-script')</script></svg>",
    "[click me](javascript:alert('xss-md-link'))",
    "<a href=\"javascript:alert('xss-a')\">open</a>",
    "<details open ontoggle=alert('xss-details')><summary>x</summary></details>",
    "\"><script>alert('xss-attr')</script><x y=\"",
    "'><svg/onload=alert('xss-quote')>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('xss-mxss')>",
    "<iframe srcdoc=\"<script>parent.alert('xss-iframe')</script>\"></iframe>",
    "![img](javascript:alert('xss-md-img'))",
    "<details><summary>Resource</summary><img src=x onerror=alert('xss-allowlist')></details>",
    "{{ 7*7 }} {% raw %}",
    "javascript:alert('xss-bare')",
)


def _send_hostile(endpoint: str, index: int, payload: str) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    resource = {"service.name": f"svc-{index}{payload[:40]}", "service.version": payload[:60],
                "deployment.environment.name": payload[:60], "autoheal.source": "browser"}
    stack = (f"Error: {payload}\n    at handler{index} (/srv/app/{urllib.parse.quote(payload[:20])}.js:10:5)\n"
             f"    at run (/srv/app/node_modules/express/lib/router.js:1:1)")
    log = log_record(f"before the error: {payload}", trace_id=trace_id, span_id=span_id,
                     attributes={"note": payload, payload[:30]: "value"})
    assert post(f"{endpoint}/v1/logs", logs_payload([log], resource))[0] == 200
    failing = span(trace_id, span_id, f"GET /{payload}", exception={
        "type": f"Xss{index}Error", "message": f"{payload} (case {index})", "stacktrace": stack},
        attributes={"http.route": payload, "url.query": payload})
    body: dict[str, Any] = traces_payload([failing], resource)
    body["resourceSpans"][0]["resource"]["attributes"] += attrs({"host.name": payload})
    assert post(f"{endpoint}/v1/traces", body)[0] == 200


#: Run in the page: every way markup from the data could have become live in the DOM.
_DOM_CHECK = """(() => {
  const bad = [];
  for (const s of document.scripts) if (s.getAttribute('src') !== '/static/ui.js') bad.push('script: ' + s.outerHTML.slice(0, 80));
  for (const e of document.querySelectorAll('*')) {
    for (const a of e.attributes) {
      if (a.name.startsWith('on')) bad.push('handler: ' + e.tagName + ' ' + a.name);
      if (/^\\s*(javascript|data|vbscript):/i.test(a.value) && ['href', 'src', 'action', 'formaction', 'srcdoc'].includes(a.name)
          && !(e.tagName === 'LINK' && a.value === 'data:,')) bad.push('url: ' + e.tagName + ' ' + a.name + '=' + a.value.slice(0, 60));
    }
    if (['IFRAME', 'OBJECT', 'EMBED', 'IMG', 'MATH', 'STYLE', 'BASE', 'FORM'].includes(e.tagName)
        && !(e.tagName === 'FORM' && ['/', '/login', '/logout'].includes(e.getAttribute('action')))) bad.push('element: ' + e.tagName);
  }
  return bad;
})()"""


def test_hostile_error_text_never_executes(autoheal_factory: Callable[..., Any]) -> None:
    """Script tags, javascript: links, SVG handlers and Markdown-embedded HTML in every field stay text."""
    service = autoheal_factory()
    endpoint = service.http_endpoint
    for index, payload in enumerate(PAYLOADS):
        _send_hostile(endpoint, index, payload)
    wait_for(lambda: get_json(f"{endpoint}/api/groups?per_page=1")["total"] >= len(PAYLOADS), 60, 0.3, "groups")
    groups = get_json(f"{endpoint}/api/groups?per_page=200")["groups"]
    browser = Browser()
    try:
        pages = ["/", "/?spark=14d", "/status", "/login"]
        pages += [f"/groups/{g['id']}" + suffix for g in groups for suffix in ("", "?range=48h")]
        pages += ["/?" + urllib.parse.urlencode({"q": p}) for p in PAYLOADS[:4]]
        pages += ["/?" + urllib.parse.urlencode({"service": p, "source": p, "state": p, "sort": p}) for p in PAYLOADS[4:8]]
        pages += ["/groups/1?" + urllib.parse.urlencode({"range": p}) for p in PAYLOADS[:2]]
        pages += ["/login?" + urllib.parse.urlencode({"next": "javascript:alert('xss-next')"})]
        for path in pages:
            answer = browser.call("goto", url=endpoint + path)
            assert answer["status"] == 200, (path, answer)
            assert browser.call("eval", expression=_DOM_CHECK) == [], path
        # The payloads are there, as text.
        browser.call("goto", url=f"{endpoint}/groups/{groups[0]['id']}")
        page_text = browser.call("eval", expression="document.body.innerText")
        assert "alert('xss-" in page_text
        assert "49" not in browser.call("eval", expression="document.querySelector('h1').innerText")
        events = browser.call("events")
        assert events["dialogs"] == [], events["dialogs"]
        assert events["pageErrors"] == [], events["pageErrors"]
        # A CSP refusal would be logged as a console error: it would mean markup got through.
        assert events["consoleErrors"] == [], events["consoleErrors"]
    finally:
        browser.close()
