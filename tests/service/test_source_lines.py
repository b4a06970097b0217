"""Source lines and code links in the issue body: untrusted senders, size limits, path rules, settings."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from markdown_it import MarkdownIt

from otel_autoheal.code_links import CodeLinker, repository_path, web_base_url
from otel_autoheal.config import Config, load_config
from otel_autoheal.errors import ConfigError
from otel_autoheal.group.fingerprint import compute_fingerprint
from otel_autoheal.group.stacktrace import InAppRules, parse_stacktrace
from otel_autoheal.model import ExceptionRecord, GroupStats
from otel_autoheal.render import RenderOptions, render_issue
from otel_autoheal.scrub import Scrubber
from otel_autoheal.source_context import MAX_LINE_CHARS, annotate_chain
from otlp_payloads import attrs, new_span_id, new_trace_id, post, span, traces_payload

REVISION = "0123456789abcdef0123456789abcdef01234567"
STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/checkout/shop/app/cli.py", line 20, in main\n'
    "    return run(args)\n"
    '  File "/srv/checkout/shop/app/cart.py", line 42, in total\n'
    "    raise ValueError(line)\n"
    '  File "/usr/lib/python3.12/json/decoder.py", line 337, in decode\n'
    "    obj = x\n"
    "ValueError: bad line\n"
)
FENCE_BREAKER = "```\n</details>\n@octocat #1 [x](javascript:alert(1)) <img src=x onerror=alert(1)>"


def _entry(file: str, line: int, context: str, pre: list[str] | None = None, post: list[str] | None = None,
           **extra: Any) -> str:
    return json.dumps({"file": file, "line": line, "function": "f", "pre": pre or [], "context": context,
                       "post": post or [], **extra})


def _record(source_context: tuple[str, ...] = (), resource: dict[str, Any] | None = None,
            ingest_trust: str = "") -> ExceptionRecord:
    record = ExceptionRecord("ValueError", "bad line", STACK, 1, "ab" * 16, "cd" * 8, "span_event",
                             resource={"service.name": "shop", **(resource or {})}, ingest_trust=ingest_trust,
                             source_context=source_context)
    record.chain = parse_stacktrace(record.stacktrace, record.type, record.message, InAppRules((), ()))
    return record


def _stats() -> GroupStats:
    return GroupStats(count=1, first_seen=1.7e9, last_seen=1.7e9, versions=("1.0.0",))


def _render(record: ExceptionRecord, limit: int = 65_536, config: Config | None = None) -> str:
    config = config or Config()
    record.chain = annotate_chain(record, Scrubber(), CodeLinker(config, env={}).link)
    fingerprint = compute_fingerprint(record.service_name, record.chain)
    return render_issue(record, [], fingerprint, _stats(), RenderOptions(max_body_chars=limit))[1]


GITHUB = {"vcs.repository.url.full": "https://github.com/acme/shop", "vcs.ref.head.revision": REVISION}
CART_LINES = (_entry("/srv/checkout/shop/app/cart.py", 42, "    raise ValueError(line)",
                     [f"    step_{i} = {i}" for i in range(5)], [f"    after_{i} = {i}" for i in range(5)]),)


# -- rendering and the size limit ---------------------------------------------------------------
def test_code_section_shows_numbered_lines_and_links_of_in_app_frames() -> None:
    """±5 numbered lines with the failing one marked, a link per in-app frame, none for library frames."""
    body = _render(_record(CART_LINES, GITHUB))
    code = body[body.index("## Code"):body.index("## Stack trace")]
    assert "> 42 |     raise ValueError(line)" in code
    assert "  37 |     step_0 = 0" in code and "  47 |     after_4 = 4" in code
    assert f"(https://github.com/acme/shop/blob/{REVISION}/app/cart.py#L42)" in code
    assert f"(https://github.com/acme/shop/blob/{REVISION}/app/cli.py#L20)" in code  # linked, no lines sent
    assert "decoder.py" not in code


def test_source_lines_are_dropped_first_when_the_body_is_over_the_limit() -> None:
    """Over the limit the code blocks go (links stay) while the stack trace is still shown whole; far over, the section goes."""
    long_lines = (_entry("/srv/checkout/shop/app/cart.py", 42, "    raise ValueError(line)",
                         [f"    step_{i} = '{'s' * 150}'" for i in range(5)], [f"    after_{i} = {i}" for i in range(5)]),)
    full = _render(_record(long_lines, GITHUB))
    without_lines = re.sub(r"```text\n  37 .*?\n```\n", "", full, flags=re.S)
    assert len(without_lines) < len(full) - 700
    limit = len(without_lines) + 700  # the renderer keeps 600 characters for headings and notes
    body = _render(_record(long_lines, GITHUB), limit)
    assert len(body) <= limit
    assert "## Code" in body and "app/cart.py#L42)" in body  # the links stayed
    assert "step_0" not in body  # the lines went first …
    assert STACK.rstrip() in body  # … while the stack trace is whole

    no_code = re.sub(r"## Code\n.*?(?=## Stack trace)", "", full, flags=re.S)
    tight = _render(_record(long_lines, GITHUB), len(no_code) + 100)
    assert len(tight) <= len(no_code) + 100 and "## Code" not in tight and STACK.rstrip() in tight


def test_hostile_source_lines_stay_inside_their_fence() -> None:
    """Fence breakers, HTML, links and mentions in source lines render as code, never as Markdown."""
    lines = (_entry("/srv/checkout/shop/app/cart.py", 42, FENCE_BREAKER.replace("\n", " "), FENCE_BREAKER.split("\n")),)
    body = _render(_record(lines, GITHUB))
    tokens = MarkdownIt("commonmark").parse(body)
    fences = [t for t in tokens if t.type == "fence"]
    assert any("onerror=alert(1)" in t.content for t in fences)
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrs["href"])
                assert href.startswith(("https://github.com/acme/shop/blob/", "http://localhost:16686/trace/")), href
        assert token.type not in ("html_block", "html_inline") or "<img" not in token.content


def test_untrusted_entries_are_bounded_scrubbed_and_ignored_for_grouping() -> None:
    """Huge lines, junk entries and secrets in sent lines are cut, skipped and redacted; the fingerprint does not move."""
    pem = ["-----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7v3x", "-----END RSA PRIVATE KEY-----"]
    sent = (
        "not json", json.dumps([1, 2]), _entry("/srv/checkout/shop/app/cart.py", 42, "x" * 50_000 + " tail",
                                              ['    password = "hunter2hunter2"'], ["    " + "y" * 10_000]),
        _entry("/srv/checkout/shop/app/cli.py", 20, "    return run(args)", pem),  # a redaction joins lines: none shown
        json.dumps({"file": "/srv/checkout/shop/app/cli.py", "line": "20", "context": "wrong type"}),
    )
    early = (_entry("/srv/checkout/shop/app/cart.py", 42, "    raise ValueError(line)", [f"p{i}" for i in range(5)]),)
    record = _record(early, GITHUB)
    record.chain[0] = replace(record.chain[0], frames=tuple(
        replace(f, lineno=2) if f.filename.endswith("cart.py") else f for f in record.chain[0].frames))
    assert "  1 | p4\n> 2 |     raise" in _render(replace(record, source_context=(early[0].replace('"line": 42', '"line": 2'),)))
    plain, annotated = _record(), _record(sent, GITHUB)
    assert compute_fingerprint("shop", plain.chain).hex == compute_fingerprint("shop", annotated.chain).hex
    body = _render(annotated)
    assert "hunter2hunter2" not in body and "MIIEowIBAAKCAQEA7v3x" not in body and "wrong type" not in body
    assert "[redacted:" in body
    code = body[body.index("## Code"):body.index("## Stack trace")]
    assert all(len(line) <= MAX_LINE_CHARS + 12 for line in code.splitlines()), max(map(len, code.splitlines()))
    assert " tail" not in code  # cut after scrubbing
    assert "```" not in code.split("cli.py:20")[1]  # the PEM frame: linked, its lines not shown
    assert compute_fingerprint("shop", annotated.chain).hex == compute_fingerprint("shop", plain.chain).hex


# -- links ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("filename", "repo", "sent", "expected"), [
    ("/srv/checkout/shop/app/cli.py", "x", "app/cli.py", "app/cli.py"),           # 1. the sender's checkout path
    ("/srv/checkout/shop/app/cli.py", "x", "../../etc/passwd", None),              # … never outside the repository
    ("src/cart.ts", "shop", "", "src/cart.ts"),                                    # 2. relative as it is
    ("webpack://shop/./src/cart.ts", "shop", "", "src/cart.ts"),
    ("github.com/acme/shop/cart/cart.go", "shop", "", "cart/cart.go"),             # … a Go module path of the repo
    ("github.com/other/lib/x.go", "shop", "", None),
    ("Cart.java", "shop", "", None),                                               # … a bare name: folder unknown
    ("/home/runner/work/shop/shop/app/cli.py", "shop", "", "app/cli.py"),          # 3. after the repository's folder
    ("/usr/src/app/src/server.js", "shop", "", "src/server.js"),                   # 4. deployment roots …
    ("/var/www/releases/20261130-1/app/models/cart.rb", "shop", "", "app/models/cart.rb"),
    ("/venv/lib/python3.12/site-packages/shop/cart.py", "other", "", "shop/cart.py"),  # … an installed package
    ("https://shop.example.com/assets/app.js", "shop", "", None),                  # served URLs never
    ("/tmp/unrelated/place/x.py", "shop", "", None),                               # no rule: no guess
])
def test_repository_relative_path_rules(filename: str, repo: str, sent: str, expected: str | None) -> None:
    """The documented path rules, in order; anything they cannot place is not linked."""
    assert repository_path(filename, repo, sent, owner="acme") == expected


def test_sender_repository_needs_the_github_host_and_a_trusted_receiver() -> None:
    """vcs.* on another host, or from an untrusted receiver, gives no link; a configured repository always does."""
    linker = CodeLinker(Config(), env={})
    frame = next(f for f in _record().chain[0].frames if f.filename.endswith("cart.py"))
    assert linker.link(frame, _record(resource=GITHUB)) == f"https://github.com/acme/shop/blob/{REVISION}/app/cart.py#L42"
    evil = {**GITHUB, "vcs.repository.url.full": "https://evil.example/acme/shop"}
    assert linker.link(frame, _record(resource=evil)) is None
    assert linker.link(frame, _record(resource=GITHUB, ingest_trust="untrusted")) is None
    assert linker.link(frame, _record(resource={**GITHUB, "vcs.ref.head.revision": "main?x=1#y"})) is None
    configured = CodeLinker(Config(code_repositories={"shop": "acme/mono/services/shop"}), env={})
    untrusted = _record(resource={"service.version": "2.0.1"}, ingest_trust="untrusted")
    assert configured.link(replace(frame, filename="/app/app/cart.py"), untrusted) == "https://github.com/acme/mono/blob/2.0.1/services/shop/app/cart.py#L42"
    enterprise = CodeLinker(Config(), env={"GITHUB_API_URL": "https://ghe.example.com/api/v3"})
    ghe = {**GITHUB, "vcs.repository.url.full": "git@ghe.example.com:acme/shop.git"}
    assert enterprise.link(frame, _record(resource=ghe)) == f"https://ghe.example.com/acme/shop/blob/{REVISION}/app/cart.py#L42"
    assert enterprise.link(frame, _record(resource=GITHUB)) is None  # github.com is not that GitHub
    assert web_base_url("https://api.github.com") == "https://github.com"


def test_code_link_settings_are_validated_with_their_key() -> None:
    """code_repositories parses from the environment and rejects bad values naming the key; the tag template needs {version}."""
    config = load_config(env={"AUTOHEAL_CODE_REPOSITORIES": "shop=acme/shop, cart=acme/mono/cart",
                              "AUTOHEAL_CODE_TAG_TEMPLATE": "v{version}"})
    assert config.code_repositories == {"shop": "acme/shop", "cart": "acme/mono/cart"}
    with pytest.raises(ConfigError, match=r"AUTOHEAL_CODE_REPOSITORIES\.shop"):
        load_config(env={"AUTOHEAL_CODE_REPOSITORIES": "shop=https://evil.example/x"})
    with pytest.raises(ConfigError, match=r"code_repositories\.shop"):
        load_config(overrides={"code_repositories": {"shop": "acme/../x"}})
    with pytest.raises(ConfigError, match="code_tag_template"):
        load_config(env={"AUTOHEAL_CODE_TAG_TEMPLATE": "release"})


# -- through the running service ------------------------------------------------------------------
def test_sent_source_lines_reach_the_issue_and_do_not_split_the_group(autoheal: Any) -> None:
    """Two occurrences, one with source lines and vcs.*, one without: one group, and the issue shows the lines and links."""
    resource = {"service.name": "shop", **GITHUB}
    plain = span(new_trace_id(), new_span_id(), "run", exception={"type": "ValueError", "message": "bad line", "stacktrace": STACK})
    assert post(f"{autoheal.http_endpoint}/v1/traces", traces_payload([plain], resource))[0] == 200
    autoheal.wait_for_issues(1)
    rich = span(new_trace_id(), new_span_id(), "run", exception={"type": "ValueError", "message": "bad line", "stacktrace": STACK})
    rich["events"][0]["attributes"] += attrs({"autoheal.source_context": list(CART_LINES)})
    assert post(f"{autoheal.http_endpoint}/v1/traces", traces_payload([rich], resource))[0] == 200
    (issue,) = autoheal.wait_for_issues(lambda found: len(found) == 1 and found[0]["count"] == 2)
    assert "> 42 |     raise ValueError(line)" in issue["body"]
    assert re.search(rf"\(https://github\.com/acme/shop/blob/{REVISION}/app/cart\.py#L42\)", issue["body"])
    assert len(autoheal.issues()) == 1
