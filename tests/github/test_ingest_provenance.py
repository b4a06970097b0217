"""Provenance comes from the receiver (token, browser origin), never from the sender's ``autoheal.source``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gh_harness import wait_for
from otel_autoheal.otlp import LogData, SpanData, from_journal, journal_payload
from otel_autoheal.sinks.github.markers import parse_header
from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload
from tests.github_standin.server import GitHubStandin

TOKEN = "ingest-token-for-provenance"
ORIGIN = "http://shop.example"
PARTNER_TOKEN = "partner-token-mapped-untrusted"


def _send(svc: Any, exc_type: str, headers: dict[str, str]) -> None:
    resource = {"service.name": "shop", "service.version": "1.0.0", "autoheal.source": "cli"}
    stack = (f'Traceback (most recent call last):\n  File "/srv/app/{exc_type.lower()}.py", line 3, in run\n'
             f"    fail()\n{exc_type}: it broke\n")
    exc = {"type": exc_type, "message": "it broke", "stacktrace": stack}
    payload = traces_payload([span(new_trace_id(), new_span_id(), "checkout", exception=exc)], resource)
    status, body = post(f"{svc.http_endpoint}/v1/traces", payload, headers=headers)
    assert status == 200, body


def test_token_is_trusted_and_a_browser_claiming_cli_is_not(
    github_standin: GitHubStandin, autoheal_factory: Callable[..., Any]
) -> None:
    """The ingest token gives trusted; a CORS browser claiming source "cli" and a token mapped untrusted give untrusted."""
    svc = autoheal_factory(env={**github_standin.env(), "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": "0",
                                "AUTOHEAL_INGEST_TOKEN": TOKEN, "AUTOHEAL_CORS_ORIGINS": ORIGIN,
                                "AUTOHEAL_INGEST_TOKENS": f"{PARTNER_TOKEN}=untrusted"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _ = post(f"{svc.http_endpoint}/v1/traces", traces_payload([]), headers={"Authorization": "Bearer nope"})
    assert status == 401
    _send(svc, "TokenError", auth)
    _send(svc, "BrowserError", {**auth, "Origin": ORIGIN})
    _send(svc, "PartnerError", {"Authorization": f"Bearer {PARTNER_TOKEN}"})

    def blocks() -> dict[str, dict[str, Any]] | None:
        found = {}
        for issue in github_standin.issues():
            data = parse_header(str(issue["body"] or ""))
            if data is not None:
                found[str(data["exception_type"])] = data
        return found if len(found) == 3 else None

    data = wait_for(blocks, timeout=90, what="three filed issues with data blocks")
    assert (data["TokenError"]["trusted_source"], data["TokenError"]["provenance"]) == (True, "receiver")
    assert (data["BrowserError"]["trusted_source"], data["BrowserError"]["provenance"]) == (False, "receiver")
    assert data["BrowserError"]["source"] == "cli"  # the sender's claim is kept as data, not believed
    assert (data["PartnerError"]["trusted_source"], data["PartnerError"]["provenance"]) == (False, "receiver")


def test_journal_replay_keeps_the_receivers_verdict() -> None:
    """A failed span and an exception log read back from the intake journal keep their ingest_trust."""
    span_data = SpanData("a" * 32, "b" * 16, "", "checkout", "SERVER", 1, 2, True, ingest_trust="untrusted")
    log_data = LogData("a" * 32, "b" * 16, 1, 17, "ERROR", "boom", {"exception.type": "E"}, {}, ingest_trust="trusted")
    assert from_journal("span", journal_payload(span_data)).ingest_trust == "untrusted"
    assert from_journal("log", journal_payload(log_data)).ingest_trust == "trusted"
