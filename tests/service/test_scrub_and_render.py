"""Secrets never reach an issue; untrusted text is fenced and neutralised; GitHub's limits hold."""

from __future__ import annotations

import re

import pytest

from otel_autoheal.render import fence
from otel_autoheal.scrub import Scrubber, luhn_valid
from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, now_nanos, post, span, traces_payload

# (secret, kind) — each must vanish from every output. Built by concatenation so that secret
# scanners don't flag this file.
SECRETS = [
    ("ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "github_token"),
    ("github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab", "github_token"),
    ("glpat-" + "xYz12345abcdeFGHIJ_kl", "gitlab_token"),
    ("xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
    ("AKIA" + "IOSFODNN7EXAMPLE", "aws_access_key"),
    ("AIza" + "SyD-abcdefghijklmnopqrstuvwxyz12345", "google_api_key"),
    ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ" + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "jwt"),
    ("4111 1111 1111 1111", "card_number"),
    ("5500-0000-0000-0004", "card_number"),
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4y5fakefakefakefake\nQWERTYfakekeymaterial==\n-----END RSA PRIVATE KEY-----"


def test_scrubber_corpus_and_kinds():
    """Every secret format in the corpus is replaced and the replacement names its kind."""
    s = Scrubber()
    for secret, kind in SECRETS:
        out = s.text(f"failed with {secret} in request")
        assert secret not in out and f"[redacted:{kind}]" in out, (secret, out)
    assert "fakekeymaterial" not in s.text(f"key:\n{PEM}\nend")
    assert s.text("postgres://app:s3cr3t-pw@db:5432/x") == "postgres://app:[redacted:url_password]@db:5432/x"
    assert "hunter2" not in s.text("Authorization: Basic hunter2")
    assert s.argv(["deploy", "--password", "hunter2", "--api-key=abc123", "--verbose"]) == [
        "deploy", "--password", "[redacted:password]", "--api-key=[redacted:api_key]", "--verbose"]
    assert s.attributes({"db.password": "x", "session_id": "y", "http.route": "/a"}) == {
        "db.password": "[redacted:password]", "session_id": "[redacted:session]", "http.route": "/a"}


def test_scrubber_keeps_ordinary_text_and_honours_config():
    """Ordinary numbers, words and allow-listed values survive; extra patterns apply."""
    s = Scrubber(extra_patterns={"ticket": r"TKT-\d{6}"}, allow=["4111111111111111"])
    assert s.text("order 1234567890123 failed after 3 retries; tokenizer ok") == \
        "order 1234567890123 failed after 3 retries; tokenizer ok"
    assert s.text("see TKT-123456") == "see [redacted:ticket]"
    assert s.text("card 4111111111111111") == "card 4111111111111111"
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_no_secret_reaches_a_stored_issue(autoheal):
    """Secrets in the message, stack, span/resource attributes and logs are absent from the stored issue."""
    trace_id, span_id = new_trace_id(), new_span_id()
    corpus = " ".join(s for s, _ in SECRETS)
    stack = f'Traceback (most recent call last):\n  File "/app/pay.py", line 3, in pay\n    charge("{SECRETS[0][0]}")\nRuntimeError: {corpus}\n'
    attributes = {"process.command_args": ["pay", "--token", "tok_supersecret_1", "--password=hunter22"],
                  "http.request.header.authorization": "Bearer abc.def.ghi", "db.password": "pw-123456",
                  "url.full": "https://bob:topsecret99@api.example.com/v1"}
    _send = post(f"{autoheal.http_endpoint}/v1/traces", traces_payload(
        [span(trace_id, span_id, "pay", attributes=attributes,
              exception={"type": "RuntimeError", "message": corpus, "stacktrace": stack})],
        {"service.name": "pay", "api_key": "resource-secret-1"}))
    assert _send[0] == 200
    post(f"{autoheal.http_endpoint}/v1/logs", logs_payload([log_record(
        f"calling api with key={SECRETS[4][0]} and {PEM}", trace_id=trace_id, time_nanos=now_nanos() - 10**9)]))
    body = autoheal.wait_for_issues(1)[0]["body"]
    issue_text = body + autoheal.issues()[0]["title"]
    for secret, _ in SECRETS:
        assert secret not in issue_text
        assert secret.replace(" ", "").replace("-", "") not in issue_text
    for leaked in ("tok_supersecret_1", "hunter22", "abc.def.ghi", "pw-123456", "topsecret99", "resource-secret-1",
                   "fakekeymaterial"):
        assert leaked not in issue_text, leaked
    assert "[redacted:github_token]" in body and "[redacted:private_key]" in body


def test_fence_is_longer_than_any_backtick_run():
    """A payload with ```` and ``````` inside cannot close our fence."""
    text = "a ``` b ```````` c"
    fenced = fence(text)
    opening = fenced.split("\n", 1)[0]
    assert opening.startswith("`" * 9) and fenced.endswith("`" * 9)


def test_markdown_injection_is_neutralised(autoheal):
    """Mentions, refs, bidi controls, HTML and fences in error text can't escape or notify."""
    message = "@octocat see #12 and GH-7 ``` </details> <img src=x onerror=alert(1)> \u202eevil\u200b [x](http://a)"
    stack = f"Error: {message}\n    at f (http://127.0.0.1/app.js:1:1)"
    post(f"{autoheal.http_endpoint}/v1/traces", traces_payload([span(
        new_trace_id(), new_span_id(), "@admin #99", attributes={"gen_ai.tool.name": "@team please merge #5"},
        exception={"type": "Error", "message": message, "stacktrace": stack})]))
    issue = autoheal.wait_for_issues(1)[0]
    body, title = issue["body"], issue["title"]
    assert "\u202e" not in body and "\u202e" not in title
    # Outside fenced blocks: no live mention, ref, or raw HTML from the payload.
    outside = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", body)
    outside = re.sub(r"<!-- autoheal:[^\n]*-->", "", outside)
    assert not re.search(r"(?<![\w`])@(octocat|admin|team)\b", outside)
    assert not re.search(r"(?<![\w&`])#(12|99|5)\b", outside)
    assert "<img" not in outside and "</details> <img" not in outside
    assert not re.search(r"(?<![\w`])@octocat\b", title) and "#12" not in title
    # Fences are balanced: every opening fence has a matching closing one.
    fences = re.findall(r"(?m)^(`{3,})", body)
    assert len(fences) % 2 == 0


@pytest.mark.parametrize("size", [1_000_000])
def test_huge_stack_and_deep_recursion_are_trimmed(autoheal, size):
    """A million-character stack and a 10,000-frame recursion give bodies within GitHub's limit with a note."""
    long_message = "x" * 300 + " " + "y" * size
    deep = "Traceback (most recent call last):\n" + '  File "/app/r.py", line 2, in r\n    r()\n' * 10_000 + \
        "RecursionError: maximum recursion depth exceeded\n"
    post(f"{autoheal.http_endpoint}/v1/traces", traces_payload([
        span(new_trace_id(), new_span_id(), "huge", exception={"type": "ValueError", "message": long_message,
                                                              "stacktrace": long_message}),
        span(new_trace_id(), new_span_id(), "deep", exception={"type": "RecursionError", "message": "maximum recursion depth exceeded",
                                                              "stacktrace": deep}),
    ]))
    issues = autoheal.wait_for_issues(2)
    for issue in issues:
        assert len(issue["body"]) <= 65_536
        assert len(issue["title"]) <= 256
        assert "trimmed by otel-autoheal" in issue["body"]


def test_more_vendor_tokens_cookies_and_bearer():
    """Cookie headers, stand-alone bearer tokens and other vendors' formats are redacted too."""
    s = Scrubber()
    assert s.text("Cookie: a=b; sid=xyz123") == "Cookie: [redacted:cookie]"
    assert "abcdefghijklmnop1234" not in s.text("retry with bearer abcdefghijklmnop1234")
    assert s.text("hvs." + "CAESIJlWfakefakefakefakefake12") == "[redacted:vault_token]"
    assert s.text("the cookie jar is empty") == "the cookie jar is empty"


def test_span_names_are_scrubbed(autoheal):
    """A token in a span name (a raw URL used as the name) never reaches the issue, the related list included."""
    trace_id, server, client = new_trace_id(), new_span_id(), new_span_id()
    token = "reset-" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    spans = [
        span(trace_id, server, f"GET /password-reset?token={token}", kind=2, error=True),
        span(trace_id, client, f"POST https://api.example.com/v1/reset?access_token={token}", parent=server, kind=3,
             exception={"type": "ResetError", "message": "reset failed",
                        "stacktrace": 'Traceback (most recent call last):\n  File "/app/reset.py", line 3, in reset\nResetError: reset failed\n'}),
    ]
    assert post(f"{autoheal.http_endpoint}/v1/traces", traces_payload(spans))[0] == 200
    issue = autoheal.wait_for_issues(1)[0]
    assert token not in issue["body"] and token not in issue["title"]
    assert "/password-reset" in issue["body"] or "/v1/reset" in issue["body"]
