#!/usr/bin/env python3
"""Write a failing regression-test scaffold for an autoheal issue (the no-Copilot fallback).

Installed by ``otel-autoheal init`` as ``.github/autoheal/scaffold.py`` and run by the
``autoheal`` workflow's fallback job, which commits the file and opens a draft pull request.
Standard library only.

The only part of the issue it reads is the machine-readable block otel-autoheal puts in the
issue body, a hidden HTML comment ``<!-- autoheal:data {json} -->`` with the keys
``fingerprint``, ``exception_type``, ``service``, ``source`` and either ``cli_argv`` (a list
of strings) or ``mcp_tool`` plus ``mcp_arguments`` (an object). Nothing from the issue is
executed, and every value lands in the generated pytest file as an escaped literal
(``ascii()`` of a ``str``/``list`` of ``str``, or ``json.loads`` of an escaped JSON string),
so no issue text can become code, a comment or a docstring.

Usage:
    scaffold.py                         reads the issue through the REST API (environment below)
    scaffold.py --body-file F --issue N [--out-dir DIR]   offline, from a saved issue body

Environment:
    GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_TOKEN, AUTOHEAL_ISSUE_NUMBER
    AUTOHEAL_TEST_DIR   where to write the test (default tests/autoheal)
    GITHUB_OUTPUT       receives ``path=<written file>`` (empty when nothing was written)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Any

DATA_MARKER = "<!-- autoheal:data"
DEFAULT_TEST_DIR = "tests/autoheal"
MAX_DATA_CHARS = 65536
_MAX_STR = 4096
_MAX_ARGV = 256
_MAX_ARGUMENTS_JSON = 32768
_STRING_KEYS = ("fingerprint", "exception_type", "service", "source", "mcp_tool")


class ScaffoldError(Exception):
    """The issue has no usable autoheal:data block."""


def _reject_constant(name: str) -> Any:
    raise ScaffoldError(f"autoheal:data contains {name}, which is not JSON")


def parse_data(body: str) -> dict[str, Any] | None:
    """The validated autoheal:data object from an issue body, or None when the body has none.

    otel-autoheal writes its block on line 2, right under the fingerprint marker (the gate hands
    over only issues laid out so); when it is there, only that line is read and copies further
    down (error text can carry anything) are ignored. Otherwise exactly one block is accepted: a
    second one makes the body ambiguous and is refused rather than guessed at.
    """
    lines = body.split("\n", 2)
    if len(lines) >= 2 and lines[0].startswith("<!-- autoheal:fingerprint=") and lines[1].startswith(DATA_MARKER):
        body = lines[1]
    blocks: list[Any] = []
    pos = body.find(DATA_MARKER)
    while pos >= 0:
        start = pos + len(DATA_MARKER)
        rest = body[start:]
        offset = len(rest) - len(rest.lstrip())
        if offset == 0:
            raise ScaffoldError("malformed autoheal:data block")
        try:
            doc, end = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(rest, offset)
        except ValueError as exc:
            raise ScaffoldError(f"autoheal:data is not valid JSON: {exc}") from None
        if end - offset > MAX_DATA_CHARS:
            raise ScaffoldError("oversized autoheal:data block")
        tail = rest[end:]
        if not tail.lstrip().startswith("-->"):
            raise ScaffoldError("malformed autoheal:data block")
        blocks.append(doc)
        # Markers inside the JSON strings just decoded are data; look only after the block.
        after = start + end + (len(tail) - len(tail.lstrip())) + 3
        pos = body.find(DATA_MARKER, after)
    if not blocks:
        return None
    if len(blocks) > 1:
        raise ScaffoldError("the issue body has more than one autoheal:data block")
    doc = blocks[0]
    if not isinstance(doc, dict):
        raise ScaffoldError("autoheal:data is not a JSON object")
    return _validate(doc)


def _validate(doc: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in _STRING_KEYS:
        value = doc.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > _MAX_STR:
            raise ScaffoldError(f"autoheal:data {key} must be a string of at most {_MAX_STR} characters")
        data[key] = value
    argv = doc.get("cli_argv")
    if argv is not None:
        if not isinstance(argv, list) or len(argv) > _MAX_ARGV:
            raise ScaffoldError(f"autoheal:data cli_argv must be a list of at most {_MAX_ARGV} strings")
        if not all(isinstance(a, str) and len(a) <= _MAX_STR for a in argv):
            raise ScaffoldError("autoheal:data cli_argv must contain only strings")
        data["cli_argv"] = list(argv)
    arguments = doc.get("mcp_arguments")
    if arguments is not None:
        if not isinstance(arguments, dict):
            raise ScaffoldError("autoheal:data mcp_arguments must be an object")
        if len(_json(arguments)) > _MAX_ARGUMENTS_JSON:
            raise ScaffoldError("autoheal:data mcp_arguments is too large")
        data["mcp_arguments"] = arguments
    return data


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, sort_keys=True, allow_nan=False)


def _str_literal(value: str) -> str:
    # ascii() of a str is a single-line, all-ASCII Python literal: quotes, backslashes,
    # newlines, bidi and other invisible characters all come out escaped.
    return ascii(value)


def scaffold_path(number: int, out_dir: str = DEFAULT_TEST_DIR) -> str:
    """The repository-relative path of the scaffold for issue ``number``."""
    out_dir = out_dir.strip().strip("/") or DEFAULT_TEST_DIR
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", out_dir) or ".." in out_dir.split("/"):
        raise ScaffoldError(f"invalid test directory {out_dir!r}")
    return f"{out_dir}/test_autoheal_issue_{int(number)}.py"


def render_test(number: int, data: dict[str, Any]) -> str:
    """The pytest file for issue ``number`` built from validated ``data`` (see ``parse_data``)."""
    n = int(number)
    if n <= 0:
        raise ScaffoldError("issue number must be positive")
    lines = [
        f"# Generated by otel-autoheal (.github/autoheal/scaffold.py) for issue #{n}.",
        "# The constants below were copied from the issue's autoheal:data block as escaped",
        "# literals: they are data captured from a failing program, never code to run blindly.",
        "# Finish the reproduction in the stub, watch the test fail, then fix the bug.",
        f'"""Failing regression test scaffold for autoheal issue #{n}."""',
        "",
        "from __future__ import annotations",
        "",
        "import json",
        "",
        f"ISSUE_NUMBER = {n}",
    ]
    for key in ("fingerprint", "exception_type", "service", "source"):
        lines.append(f"{key.upper()} = {_str_literal(data.get(key, ''))}")
    argv = data.get("cli_argv")
    tool = data.get("mcp_tool")
    if argv is None and tool is not None:
        lines.append(f"MCP_TOOL = {_str_literal(tool)}")
    if argv is not None:
        lines.append(f"CLI_ARGV = json.loads({_str_literal(_json(argv))})")
        lines += [
            "",
            "",
            "def run_cli(args: list[str]) -> None:",
            '    """Run the program in-process with ``args`` (argv without the program name)."""',
            '    raise NotImplementedError("call the CLI\'s entry point here, e.g. main(args)")',
            "",
            "",
            f"def test_issue_{n}_cli_command_does_not_raise() -> None:",
            f'    """The command reported in issue #{n} completes without raising EXCEPTION_TYPE."""',
            "    run_cli(CLI_ARGV[1:])",
        ]
    elif tool is not None:
        lines.append(f"MCP_ARGUMENTS = json.loads({_str_literal(_json(data.get('mcp_arguments', {})))})")
        lines += [
            "",
            "",
            "def call_tool(name: str, arguments: dict[str, object]) -> object:",
            '    """Call the MCP server\'s tool ``name`` in-process with ``arguments``."""',
            '    raise NotImplementedError("call the tool handler here, e.g. through an in-memory MCP session")',
            "",
            "",
            f"def test_issue_{n}_mcp_tool_call_does_not_raise() -> None:",
            f'    """The tool call reported in issue #{n} completes without raising EXCEPTION_TYPE."""',
            "    call_tool(MCP_TOOL, MCP_ARGUMENTS)",
        ]
    else:
        lines += [
            "",
            "",
            "def reproduce() -> None:",
            '    """Trigger the code path from the issue\'s stack trace."""',
            '    raise NotImplementedError("reproduce the failure described in the issue here")',
            "",
            "",
            f"def test_issue_{n}_does_not_raise() -> None:",
            f'    """The failure reported in issue #{n} no longer raises EXCEPTION_TYPE."""',
            "    reproduce()",
        ]
    return "\n".join(lines) + "\n"


def _fetch_body(number: int) -> str:
    api_url = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    repo = os.environ.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ScaffoldError("GITHUB_REPOSITORY must be owner/name")
    req = urllib.request.Request(f"{api_url}/repos/{repo}/issues/{number}")
    req.add_header("Accept", "application/vnd.github+json")
    req.add_header("X-GitHub-Api-Version", "2022-11-28")
    req.add_header("User-Agent", "otel-autoheal-scaffold")
    token = os.environ.get("GITHUB_TOKEN", "")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        issue = json.loads(resp.read())
    return str(issue.get("body") or "")


def _set_output(path: str) -> None:
    out = os.environ.get("GITHUB_OUTPUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"path={path}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issue", default=os.environ.get("AUTOHEAL_ISSUE_NUMBER", ""))
    parser.add_argument("--body-file", help="read the issue body from this file instead of the API")
    parser.add_argument("--out-dir", default=os.environ.get("AUTOHEAL_TEST_DIR") or DEFAULT_TEST_DIR)
    parser.add_argument("--root", default=".", help="repository checkout to write into")
    args = parser.parse_args(argv)
    try:
        if not re.fullmatch(r"[1-9][0-9]{0,9}", str(args.issue).strip()):
            raise ScaffoldError("the issue number must be a positive integer")
        number = int(args.issue)
        if args.body_file:
            with open(args.body_file, encoding="utf-8") as f:
                body = f.read()
        else:
            body = _fetch_body(number)
        data = parse_data(body)
        if data is None:
            print(f"autoheal-scaffold: issue #{number}: no autoheal:data block; nothing written")
            _set_output("")
            return 0
        rel = scaffold_path(number, args.out_dir)
        dest = os.path.join(args.root, rel)
        if os.path.exists(dest):
            print(f"autoheal-scaffold: issue #{number}: {rel} already exists; nothing written")
            _set_output("")
            return 0
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as f:
            f.write(render_test(number, data))
        print(f"autoheal-scaffold: issue #{number}: wrote {rel}")
        _set_output(rel)
        return 0
    except (ScaffoldError, OSError, ValueError, urllib.error.URLError) as exc:
        print(f"autoheal-scaffold: error: {exc}", file=sys.stderr)
        _set_output("")
        return 1


if __name__ == "__main__":
    sys.exit(main())
