"""Source lines and links to the code: a real instrumented CLI subprocess sending to the real service."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from _pyinstr_helpers import EXAMPLES, PYTHON, OtlpSink, Proc, base_env
from polling import wait_for
from service.test_scrubber import (  # corpus + oracles
    CORPUS,
    _detect_secrets_findings,
    _gitleaks_findings,
    _leaks,
    _write,
)
from test_instr_mcp import PARENT_ID, TRACE_ID, call

SOURCE_KEY = "autoheal.source_context"
REVISION = "4f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"

CLI = '''\
import sys

from autoheal_instrumentation import instrument_cli

from app import pricing


@instrument_cli(service_name="shop-cli", service_version="1.4.0")
def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args == ["ok"]:
        return 0
    return pricing.total(args)  # the call into the failing module


if __name__ == "__main__":
    raise SystemExit(main())
'''

PRICING = '''\
"""Prices of a cart."""

import json


def _parse(raw):
    data = json.loads(raw)  # raises inside the standard library's json
    return data["items"]


def total(args):
    items = _parse(args[0] if args else "{not json")
    return sum(items)
'''


def _checkout(root: Path, repo: str = "shop") -> Path:
    """A Git checkout named after its repository with the two-file CLI above."""
    checkout = root / repo
    (checkout / "app").mkdir(parents=True)
    (checkout / "cli.py").write_text(CLI)
    (checkout / "app" / "__init__.py").write_text("")
    (checkout / "app" / "pricing.py").write_text(PRICING)
    return checkout


def _git(checkout: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True,
                         env=base_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                      GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com"))
    return out.stdout.strip()


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _run(checkout: Path, endpoint: str, spool: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in base_env().items() if not k.startswith("GITHUB_")}
    clean.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, AUTOHEAL_SPOOL_DIR=str(spool), **env)
    return subprocess.run([PYTHON, str(checkout / "cli.py"), *args], env=clean, cwd=checkout,
                          capture_output=True, text=True, timeout=60)


def _code_section(body: str) -> str:
    return body[body.index("## Code"):body.index("## Stack trace")]


def test_cli_frames_link_to_the_path_and_line_at_the_revision(autoheal: Any, tmp_path: Path) -> None:
    """With vcs.* in OTEL_RESOURCE_ATTRIBUTES every in-app frame links to its repository path and line; library frames never."""
    checkout = _checkout(tmp_path / "work")
    (checkout / ".git").mkdir()  # the checkout's root; the revision comes from the resource attributes
    proc = _run(checkout, autoheal.http_endpoint, tmp_path / "spool", OTEL_RESOURCE_ATTRIBUTES=(
        f"vcs.repository.url.full=https://github.com/acme/shop.git,vcs.ref.head.revision={REVISION}"))
    assert proc.returncode == 1, proc.stderr
    (issue,) = autoheal.wait_for_issues(1)
    body = issue["body"]
    base = f"https://github.com/acme/shop/blob/{REVISION}"
    pricing = checkout / "app" / "pricing.py"
    expected = {
        f"{base}/app/pricing.py#L{_line_of(pricing, 'data = json.loads(raw)')}",
        f"{base}/app/pricing.py#L{_line_of(pricing, 'items = _parse(')}",
        f"{base}/cli.py#L{_line_of(checkout / 'cli.py', 'return pricing.total(args)')}",
    }
    links = set(re.findall(r"\]\((https://github\.com/[^)\s]+)\)", body))
    assert expected <= links, links
    assert all(link.startswith(base + "/") for link in links), links  # json/decoder.py (library) is never linked
    code = _code_section(body)
    assert "data = json.loads(raw)  # raises inside" in code  # the failing line, with its neighbours
    assert 'def _parse(raw):' in code and 'return data["items"]' in code
    assert "decoder.py" not in code
    # The culprit ("Where") links to the innermost in-app line too.
    where = next(line for line in body.splitlines() if line.startswith("**Where:**"))
    assert f"{base}/app/pricing.py#L{_line_of(pricing, 'data = json.loads(raw)')}" in where


def test_cli_detects_the_revision_from_its_git_checkout(autoheal: Any, tmp_path: Path) -> None:
    """Without vcs.* attributes the CLI reads HEAD and the origin remote (credentials dropped) of the checkout holding the failing file."""
    checkout = _checkout(tmp_path / "src")
    _git(checkout, "init", "-q")
    _git(checkout, "remote", "add", "origin", "https://x-access-token:ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE1234@github.com/acme/shop.git")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "-qm", "initial")
    head = _git(checkout, "rev-parse", "HEAD")
    proc = _run(checkout, autoheal.http_endpoint, tmp_path / "spool")
    assert proc.returncode == 1, proc.stderr
    (issue,) = autoheal.wait_for_issues(1)
    line = _line_of(checkout / "app" / "pricing.py", "data = json.loads(raw)")
    assert f"https://github.com/acme/shop/blob/{head}/app/pricing.py#L{line}" in issue["body"]
    assert "ghp_FAKE" not in issue["body"] and "x-access-token" not in issue["body"]


def test_configured_repository_links_service_version_to_its_tag(autoheal_factory: Any, tmp_path: Path) -> None:
    """code_repositories + code_tag_template: a service without vcs.* links to the tag of its service.version."""
    service = autoheal_factory(env={"AUTOHEAL_CODE_REPOSITORIES": "shop-cli=acme/shop",
                                    "AUTOHEAL_CODE_TAG_TEMPLATE": "v{version}"})
    checkout = _checkout(tmp_path / "deploy")  # no .git, not named like another repository
    proc = _run(checkout, service.http_endpoint, tmp_path / "spool")
    assert proc.returncode == 1, proc.stderr
    (issue,) = service.wait_for_issues(1)
    line = _line_of(checkout / "app" / "pricing.py", "data = json.loads(raw)")
    assert f"https://github.com/acme/shop/blob/v1.4.0/app/pricing.py#L{line}" in issue["body"]


def _corpus_lines() -> list[str]:
    """Every corpus secret as source lines: text entries line by line, JSON entries as one line each (comments)."""
    lines: list[str] = []
    for entry in CORPUS:
        if entry["kind"] == "text":
            lines += [f"# {line}" for line in entry["input"].splitlines() if line.strip()]
        elif entry["kind"] == "json":
            lines.append(f"# {json.dumps(entry['input'], ensure_ascii=False)}")
    return lines


def _corpus_cli(directory: Path, lines: list[str], index: int) -> Path:
    """A CLI whose nine nested calls each sit between five corpus lines above and five below."""
    directory.mkdir(parents=True)
    source = ["from autoheal_instrumentation import instrument_cli", ""]
    depth = 9
    for step in range(depth):
        chunk = lines[step * 10:(step + 1) * 10]
        chunk += ["# filler"] * (10 - len(chunk))
        call = f"return step_{step + 1}()" if step + 1 < depth else f'raise RuntimeError("corpus run {index}")'
        source += [f"def step_{step}():", *(f"    {c}" for c in chunk[:5]), f"    {call}",
                   *(f"    {c}" for c in chunk[5:]), ""]
    source += ["def step_9():", "    pass", "", f'@instrument_cli(service_name="corpus-{index}")',
               "def main():", "    return step_0()", "", 'if __name__ == "__main__":', "    raise SystemExit(main())", ""]
    path = directory / f"corpus_{index}.py"
    path.write_text("\n".join(source))
    return path


def test_captured_source_lines_never_carry_a_corpus_secret(autoheal: Any, tmp_path: Path) -> None:
    """Source lines holding every fake secret of the corpus reach the issue scrubbed: no leak, and gitleaks and detect-secrets agree."""
    lines = _corpus_lines()
    per_run = 90
    scripts = [_corpus_cli(tmp_path / f"app{i}", lines[start:start + per_run], i)
               for i, start in enumerate(range(0, len(lines), per_run))]
    for script in scripts:
        env = {k: v for k, v in base_env().items() if not k.startswith("GITHUB_")}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=autoheal.http_endpoint, AUTOHEAL_SPOOL_DIR=str(tmp_path / "spool"))
        proc = subprocess.run([PYTHON, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
    issues = autoheal.wait_for_issues(len(scripts))
    codes = [_code_section(issue["body"]) for issue in issues]
    rendered = "\n".join(codes)
    found = {entry["category"]: hit for entry in CORPUS if (hit := _leaks(entry, rendered))}
    assert found == {}
    # The lines were shown (not dropped wholesale): most of them, with their redactions.
    shown = sum(code.count("\n  ") + code.count("\n> ") for code in codes)
    assert shown >= len(lines) * 0.8, shown
    assert rendered.count("[redacted:") >= 40
    code_dir = _write(tmp_path / "code", codes)
    assert _gitleaks_findings(code_dir) == []
    assert _detect_secrets_findings(code_dir) == []


def test_successful_run_captures_nothing(otlp_sink: OtlpSink, tmp_path: Path) -> None:
    """A successful run (even in full mode, which exports it) never loads the capture module nor runs git; a failing one does."""
    checkout = _checkout(tmp_path / "work")
    _git(checkout, "init", "-q")
    ok = _run(checkout, otlp_sink.endpoint, tmp_path / "spool", "ok", AUTOHEAL_CLI_MODE="full",
              PYTHONPROFILEIMPORTTIME="1")
    assert ok.returncode == 0, ok.stderr
    assert "autoheal_instrumentation._source_context" not in ok.stderr
    (span,) = wait_for(lambda: list(otlp_sink.spans) or None, 30, message="the full-mode span")
    assert not any(k.startswith(("vcs.", "autoheal.source_context")) for k in span["resource"]), span["resource"]
    assert not any(SOURCE_KEY in e["attributes"] for e in span["events"])

    failed = _run(checkout, otlp_sink.endpoint, tmp_path / "spool", PYTHONPROFILEIMPORTTIME="1")
    assert failed.returncode == 1
    assert "autoheal_instrumentation._source_context" in failed.stderr
    spans = wait_for(lambda: otlp_sink.spans if len(otlp_sink.spans) >= 2 else None, 30, message="the failing span")
    (event,) = [e for e in spans[1]["events"] if e["name"] == "exception"]
    entries = [json.loads(text) for text in event["attributes"][SOURCE_KEY]]
    assert [(e["path"], e["function"]) for e in entries] == [
        ("app/pricing.py", "_parse"), ("app/pricing.py", "total"), ("cli.py", "main")]
    assert entries[0]["context"] == '    data = json.loads(raw)  # raises inside the standard library\'s json'
    assert len(entries[0]["pre"]) == 5 and len(entries[0]["post"]) == 5
    assert entries[1]["post"] == ["    return sum(items)"]  # the file ends one line later



def test_failing_mcp_tool_shows_its_source_lines(autoheal: Any, processes: list[Proc]) -> None:
    """The example MCP server's divide(1, 0): the issue shows the tool's failing line among its neighbours."""
    proc = Proc([PYTHON, str(EXAMPLES / "mcp_server" / "server.py"), "--transport", "http", "--port", "0"],
                env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=autoheal.http_endpoint),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    processes.append(proc)
    assert proc.popen.stdout is not None
    url = json.loads(proc.popen.stdout.readline())["url"]
    assert call(url, "divide", {"a": 1, "b": 0}, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}).is_error
    (issue,) = autoheal.wait_for_issues(lambda found: any(TRACE_ID in i["trace_ids"] for i in found))
    code = _code_section(issue["body"])
    server = EXAMPLES / "mcp_server" / "server.py"
    failing = _line_of(server, "return a / b")
    assert re.search(rf"^> {failing} \|     return a / b$", code, re.M), code
    assert re.search(rf"^  {failing - 1} \|     log\.info\(\"computing ratio", code, re.M), code
