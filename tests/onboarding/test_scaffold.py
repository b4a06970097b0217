"""The fallback scaffold generator (``.github/autoheal/scaffold.py``) with hostile issue content."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from onboarding_helpers import GitHubStandin, clean_env, create_issue, run_init_cli
from otel_autoheal.onboarding import _files

TEMPLATE = Path(_files.__file__).parent / "templates" / "scaffold.py"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scaffold = load(TEMPLATE, "autoheal_scaffold_template")


def block(data: Any) -> str:
    return f"Rendered text.\n\n<!-- autoheal:data {json.dumps(data)} -->\n\nMore text."


def hostile_strings(sentinel: Path) -> list[str]:
    """Text an attacker would put in an exception message or argument to escape a literal."""
    touch = f"open({str(sentinel)!r}, 'w').write('pwned')"
    return [
        f'"""\n{touch}\n"""',
        f"'''\n{touch}\n'''",
        f"'); {touch}; ('",
        f'"); {touch}; ("',
        f"\\'); {touch} #",
        f"`{touch}` ```python\n{touch}\n```",
        f"__import__('os').system('touch {sentinel}')",
        f"\n{touch}\n",
        f"\r\n# comment\r{touch}",
        f"\\\n{touch}",
        f"x\u202e{touch}\u2066",  # bidi overrides
        f"\x00\x1b[31m{touch}",
        f"\ud800{touch}",  # a lone surrogate survives JSON
        f"--> <!-- autoheal:data {{}} --> {touch}",
        "{" + touch + "}",
        f"f'{{{touch}}}'",
    ]


def cases(sentinel: Path) -> list[dict[str, Any]]:
    evil = hostile_strings(sentinel)
    out: list[dict[str, Any]] = []
    for text in evil:
        out.append(
            {
                "fingerprint": text,
                "exception_type": text,
                "service": text,
                "source": "cli",
                "cli_argv": ["app", text, text],
            }
        )
        out.append(
            {
                "fingerprint": "f00d",
                "exception_type": text,
                "service": text,
                "source": text,
                "mcp_tool": text,
                "mcp_arguments": {text: [text, {"nested": text}, 1, 2.5, True, None]},
            }
        )
    out.append({"exception_type": evil[0]})  # neither CLI nor MCP data
    return out


ALLOWED_NAMES = {
    "json",
    "NotImplementedError",
    "run_cli",
    "call_tool",
    "reproduce",
    "CLI_ARGV",
    "MCP_TOOL",
    "MCP_ARGUMENTS",
    "list",
    "str",
    "dict",
    "object",
    "annotations",
    "args",
    "name",
    "arguments",
    "ISSUE_NUMBER",
    "FINGERPRINT",
    "EXCEPTION_TYPE",
    "SERVICE",
    "SOURCE",
}


def assert_no_injected_code(source: str, data: dict[str, Any], number: int) -> None:
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert names <= ALLOWED_NAMES, names - ALLOWED_NAMES
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert calls <= {"json.loads", "run_cli", "call_tool", "reproduce", "NotImplementedError"}, calls
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert functions <= {
        "run_cli",
        "call_tool",
        "reproduce",
        f"test_issue_{number}_cli_command_does_not_raise",
        f"test_issue_{number}_mcp_tool_call_does_not_raise",
        f"test_issue_{number}_does_not_raise",
    }
    assert [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))] == [
        "from __future__ import annotations",
        "import json",
    ]
    # Comments and docstrings never carry issue text.
    for line in source.splitlines():
        if line.lstrip().startswith("#") or '"""' in line:
            assert all(v not in line for v in data.values() if isinstance(v, str) and v), line
    assert source.isascii()


def test_hostile_issue_content_becomes_inert_literals(tmp_path: Path) -> None:
    """Backticks, quotes, triple quotes, newlines, bidi and __import__ end up as data that compiles and never runs."""
    sentinel = tmp_path / "pwned"
    for i, data in enumerate(cases(sentinel)):
        number = 100 + i
        parsed = scaffold.parse_data(block(data))
        assert parsed == data
        source = scaffold.render_test(number, parsed)
        path = tmp_path / f"test_autoheal_issue_{number}.py"
        path.write_text(source, encoding="utf-8")
        compiled = subprocess.run(
            [sys.executable, "-m", "py_compile", str(path)], capture_output=True, check=False, text=True, timeout=60
        )
        assert compiled.returncode == 0, compiled.stderr + source
        assert_no_injected_code(source, data, number)
        module = load(path, f"generated_{number}")
        assert data["exception_type"] == module.EXCEPTION_TYPE
        assert data.get("fingerprint", "") == module.FINGERPRINT
        if "cli_argv" in data:
            assert data["cli_argv"] == module.CLI_ARGV
        if "mcp_tool" in data:
            assert data["mcp_tool"] == module.MCP_TOOL
            assert data["mcp_arguments"] == module.MCP_ARGUMENTS
    assert not sentinel.exists()


def test_generated_test_fails_until_the_reproduction_is_written(tmp_path: Path) -> None:
    """Running the scaffold under pytest fails (the stub raises), and no hostile payload executes."""
    sentinel = tmp_path / "pwned"
    data = cases(sentinel)[0]
    mcp = cases(sentinel)[3]
    (tmp_path / "test_autoheal_issue_7.py").write_text(scaffold.render_test(7, data))
    (tmp_path / "test_autoheal_issue_8.py").write_text(scaffold.render_test(8, mcp))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed" in run.stdout
    assert run.stdout.count("NotImplementedError") >= 2
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (block({"cli_argv": ["a"]}) + block({"cli_argv": ["b"]}), "more than one"),
        ("<!-- autoheal:data [1, 2] -->", "not a JSON object"),
        ('<!-- autoheal:data {"exception_type": NaN} -->', "NaN"),
        ('<!-- autoheal:data {"cli_argv": "rm -rf /"} -->', "cli_argv"),
        ('<!-- autoheal:data {"cli_argv": ["a", 1]} -->', "cli_argv"),
        ('<!-- autoheal:data {"mcp_arguments": [1]} -->', "mcp_arguments"),
        ('<!-- autoheal:data {"exception_type": {"a": 1}} -->', "exception_type"),
        ('<!-- autoheal:data {"exception_type": "x"} trailing -->', "malformed"),
        ('<!-- autoheal:data {"exception_type": "x"', "not valid JSON"),
        ("<!-- autoheal:data" + '{"a": 1} -->', "malformed"),
        ('<!-- autoheal:data {"exception_type": "' + "x" * 70000 + '"} -->', "oversized"),
    ],
)
def test_malformed_data_blocks_are_refused(body: str, problem: str) -> None:
    """Ambiguous, non-JSON, wrongly typed or oversized data is refused rather than guessed at."""
    with pytest.raises(scaffold.ScaffoldError, match=problem):
        scaffold.parse_data(body)


def test_block_at_the_fixed_place_wins_over_copies_in_error_text() -> None:
    """With the service's header on top, only line 2 is read: a fake block further down neither wins nor refuses."""
    header = '<!-- autoheal:fingerprint=ab12cd34ef56ab12 -->\n<!-- autoheal:data {"cli_argv": ["app", "sync"]} -->\n'
    body = header + "```\n" + block({"cli_argv": ["rm", "-rf", "/"]}) + "\n```\n"
    data = scaffold.parse_data(body)
    assert data is not None and data["cli_argv"] == ["app", "sync"]


def test_body_without_data_block() -> None:
    """An issue without the block yields nothing to scaffold."""
    assert scaffold.parse_data("## KeyError\n```\nTraceback ...\n```") is None


def test_unknown_keys_are_dropped() -> None:
    """Only the documented keys reach the generated file."""
    data = scaffold.parse_data(block({"exception_type": "E", "payload": "__import__('os')", "cli_argv": ["a"]}))
    assert data == {"exception_type": "E", "cli_argv": ["a"]}
    assert "payload" not in scaffold.render_test(3, data)


def test_scaffold_script_in_a_repository(git_repo: Path, github: GitHubStandin, tmp_path: Path) -> None:
    """The installed script reads the issue through the API, writes the test once and reports its path."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    script = git_repo / ".github/autoheal/scaffold.py"
    sentinel = tmp_path / "pwned"
    data = cases(sentinel)[1]
    n = create_issue(github, "Boom", block(data), ["autoheal", "source:mcp"])
    plain = create_issue(github, "No data", "just text", ["autoheal"])

    def run(number: int, **extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
        output = tmp_path / f"out-{number}-{len(github.log())}"
        env = clean_env(**github.env(), AUTOHEAL_ISSUE_NUMBER=str(number), GITHUB_OUTPUT=str(output), **extra)
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=git_repo,
            env=env,
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        return proc, output.read_text() if output.exists() else ""

    proc, out = run(n)
    assert proc.returncode == 0, proc.stderr
    rel = f"tests/autoheal/test_autoheal_issue_{n}.py"
    assert out == f"path={rel}\n"
    written = (git_repo / rel).read_text()
    assert written == scaffold.render_test(n, data)
    before = written
    again, out = run(n)
    assert again.returncode == 0 and out == "path=\n" and "already exists" in again.stdout
    assert (git_repo / rel).read_text() == before

    none, out = run(plain)
    assert none.returncode == 0 and out == "path=\n" and "no autoheal:data block" in none.stdout

    bad, out = run(n, AUTOHEAL_TEST_DIR="../outside")
    assert bad.returncode == 1 and "invalid test directory" in bad.stderr and out == "path=\n"
    assert not (git_repo.parent / "outside").exists()
    assert not sentinel.exists()


def test_scaffold_from_issues_rendered_by_the_real_service(autoheal: Any, tmp_path: Path) -> None:
    """Issue bodies rendered by the running service carry one data block the scaffold turns into inert literals."""
    from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload

    sentinel = tmp_path / "pwned"
    evil = hostile_strings(sentinel)
    fake_block = '<!-- autoheal:data {"cli_argv": ["rm", "-rf", "/"]} -->'
    cli_span = span(
        new_trace_id(),
        new_span_id(),
        "sync",
        attributes={"process.command_args": ["app", "sync", *evil[:6], fake_block]},
        exception={"type": "KeyError", "message": f"{evil[0]} {fake_block}", "stacktrace": f"KeyError: {evil[2]}"},
    )
    mcp_span = span(
        new_trace_id(),
        new_span_id(),
        "tools/call divide",
        attributes={"gen_ai.tool.name": "divide", "gen_ai.tool.call.arguments": json.dumps({"a": evil[6], "b": 0})},
        exception={
            "type": "ZeroDivisionError",
            "message": evil[1],
            "stacktrace": "ZeroDivisionError: division by zero",
        },
    )
    for payload in (traces_payload([cli_span], {"service.name": "cli"}), traces_payload([mcp_span])):
        assert post(f"{autoheal.http_endpoint}/v1/traces", payload)[0] == 200
    issues = autoheal.wait_for_issues(2)
    by_type = {}
    for i, found in enumerate(issues):
        data = scaffold.parse_data(found["body"])
        assert data is not None and data["exception_type"] == found["exception_type"]
        by_type[data["exception_type"]] = data
        source = scaffold.render_test(500 + i, data)
        path = tmp_path / f"test_autoheal_issue_{500 + i}.py"
        path.write_text(source)
        compiled = subprocess.run(
            [sys.executable, "-m", "py_compile", str(path)], capture_output=True, check=False, text=True, timeout=60
        )
        assert compiled.returncode == 0, compiled.stderr
        assert_no_injected_code(source, data, 500 + i)
        load(path, f"generated_e2e_{i}")
    assert by_type["KeyError"]["cli_argv"][:2] == ["app", "sync"]
    assert by_type["KeyError"]["cli_argv"][-1] == fake_block
    assert by_type["ZeroDivisionError"]["mcp_tool"] == "divide"
    assert by_type["ZeroDivisionError"]["mcp_arguments"]["b"] == 0
    assert not sentinel.exists()
