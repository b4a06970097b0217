"""``otel-autoheal init`` against real temporary git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from onboarding_helpers import GitHubStandin, api, clean_env, run_init_cli, tool
from otel_autoheal.onboarding import LABELS
from otel_autoheal.onboarding._files import template

WORKFLOW = ".github/workflows/autoheal.yml"
GATE = ".github/autoheal/gate.py"
SCAFFOLD = ".github/autoheal/scaffold.py"
INSTRUCTIONS = ".github/copilot-instructions.md"
SETUP = ".github/workflows/copilot-setup-steps.yml"
ALL_FILES = (WORKFLOW, GATE, SCAFFOLD, INSTRUCTIONS, SETUP)


def snapshot(repo: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_init_writes_every_file(git_repo: Path) -> None:
    """With --yes, init writes the workflow, both scripts verbatim, the instructions section and the setup steps."""
    result = run_init_cli(git_repo, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    for rel in ALL_FILES:
        assert (git_repo / rel).is_file(), rel
        assert f"new        {rel}" in result.stdout
    assert (git_repo / GATE).read_text() == template("gate.py")
    assert (git_repo / SCAFFOLD).read_text() == template("scaffold.py")
    assert (git_repo / SETUP).read_text() == template("copilot-setup-steps.yml")
    instructions = (git_repo / INSTRUCTIONS).read_text()
    assert instructions.startswith("<!-- autoheal:begin -->") and instructions.endswith("<!-- autoheal:end -->\n")
    assert "untrusted" in instructions and "failing" in instructions
    workflow = (git_repo / WORKFLOW).read_text()
    assert "python3 .github/autoheal/gate.py" in workflow
    assert "__AUTOHEAL" not in workflow
    assert "AUTOHEAL_COPILOT_TOKEN" in result.stdout  # next steps name the secret
    for lab in LABELS:  # no token: the labels are listed for the user to create
        assert f"gh label create {lab.name} " in result.stdout


def test_second_run_changes_nothing_and_says_so(git_repo: Path) -> None:
    """A second init leaves every byte as it was and reports that nothing changed."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    subprocess.run(["git", "-C", str(git_repo), "add", "-A"], check=True, timeout=60)
    before = snapshot(git_repo)
    second = run_init_cli(git_repo)  # no --yes, no answer: it must not even need to ask
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Nothing to change" in second.stdout
    assert "Write these changes?" not in second.stdout
    assert snapshot(git_repo) == before
    status = subprocess.run(
        ["git", "-C", str(git_repo), "status", "--porcelain"], capture_output=True, text=True, check=True, timeout=60
    )
    assert status.stdout.strip().splitlines() == [f"A  {p}" for p in sorted(ALL_FILES)]


def test_existing_instructions_are_kept_and_only_the_section_replaced(git_repo: Path) -> None:
    """Existing copilot-instructions text survives; a re-run replaces only the text between the markers."""
    path = git_repo / INSTRUCTIONS
    path.parent.mkdir(parents=True)
    original = "# Project rules\n\nUse tabs. Never touch vendor/.\n"
    path.write_text(original)
    first = run_init_cli(git_repo, "--yes")
    assert first.returncode == 0
    assert f"appended   {INSTRUCTIONS}" in first.stdout
    text = path.read_text()
    assert text.startswith(original)
    assert text.count("<!-- autoheal:begin -->") == 1

    # The user edits inside and after the section; init restores only the inside.
    edited = text.replace("Keep the fix minimal", "Rewrite everything") + "\n## Later notes\nKeep me.\n"
    path.write_text(edited)
    second = run_init_cli(git_repo, "--yes")
    assert second.returncode == 0
    assert f"updated    {INSTRUCTIONS}" in second.stdout
    assert path.read_text() == text + "\n## Later notes\nKeep me.\n"
    assert "Nothing to change" in run_init_cli(git_repo, "--yes").stdout


def test_unbalanced_markers_are_refused(git_repo: Path) -> None:
    """A begin marker without an end marker stops init before anything is written."""
    path = git_repo / INSTRUCTIONS
    path.parent.mkdir(parents=True)
    path.write_text("intro\n<!-- autoheal:begin -->\nhalf a section\n")
    result = run_init_cli(git_repo, "--yes")
    assert result.returncode == 2
    assert "unbalanced" in result.stdout
    assert not (git_repo / WORKFLOW).exists()


@pytest.mark.parametrize("answer", ["n\n", "", "maybe\n"])
def test_plan_is_shown_and_anything_but_yes_writes_nothing(git_repo: Path, answer: str) -> None:
    """Without --yes init shows the plan and asks; 'n', end of input or nonsense leave the checkout untouched."""
    result = run_init_cli(git_repo, answer=answer)
    assert result.returncode == 1
    for rel in ALL_FILES:
        assert f"new        {rel}" in result.stdout
    assert "Write these changes? [y/N]" in result.stdout
    assert "Aborted: nothing written." in result.stdout
    assert snapshot(git_repo) == {}


def test_yes_answer_writes(git_repo: Path) -> None:
    """Answering 'y' at the prompt writes the plan."""
    result = run_init_cli(git_repo, answer="y\n")
    assert result.returncode == 0, result.stdout
    assert all((git_repo / rel).is_file() for rel in ALL_FILES)


def test_dry_run_writes_nothing(git_repo: Path) -> None:
    """--dry-run prints the plan and writes nothing, without asking."""
    result = run_init_cli(git_repo, "--dry-run")
    assert result.returncode == 0
    assert "Dry run: nothing written." in result.stdout
    assert snapshot(git_repo) == {}


def test_existing_setup_steps_are_left_alone(git_repo: Path) -> None:
    """An existing copilot-setup-steps.yml is kept byte for byte."""
    path = git_repo / SETUP
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")
    result = run_init_cli(git_repo, "--yes")
    assert result.returncode == 0
    assert f"kept       {SETUP}" in result.stdout
    assert path.read_text() == "# mine\n"


def test_changed_workflow_is_shown_as_updated(git_repo: Path) -> None:
    """A workflow that differs from the template is planned as 'updated' and rewritten."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    (git_repo / WORKFLOW).write_text("name: old\n")
    result = run_init_cli(git_repo, "--yes")
    assert f"updated    {WORKFLOW}" in result.stdout
    assert "python3 .github/autoheal/gate.py" in (git_repo / WORKFLOW).read_text()


def test_repo_dir_outside_git_is_an_error(tmp_path: Path) -> None:
    """init refuses a directory that is not a git checkout."""
    result = run_init_cli(tmp_path, "--yes", "--repo-dir", str(tmp_path))
    assert result.returncode == 2
    assert "not inside a git checkout" in result.stdout


def test_repo_dir_option_and_base_branch(git_repo: Path, tmp_path: Path) -> None:
    """--repo-dir targets another checkout and --base-branch becomes the workflow's default base."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_init_cli(elsewhere, "--yes", "--repo-dir", str(git_repo), "--base-branch", "release/2.x")
    assert result.returncode == 0, result.stdout
    workflow = (git_repo / WORKFLOW).read_text()
    assert "vars.AUTOHEAL_BASE_BRANCH || 'release/2.x'" in workflow
    assert not (elsewhere / ".github").exists()


def test_hostile_base_branch_is_refused(git_repo: Path) -> None:
    """A base branch that would break out of the workflow expression is rejected."""
    result = run_init_cli(git_repo, "--yes", "--base-branch", "main' }}\n    run: curl evil")
    assert result.returncode == 2
    assert not (git_repo / WORKFLOW).exists()


def test_labels_are_created_through_the_api_once(git_repo: Path, github: GitHubStandin) -> None:
    """With a token and repository init creates the missing labels, and a second run creates none."""
    api(
        github,
        "POST",
        f"/repos/{github.repository}/labels",
        {"name": "autoheal", "color": "000000", "description": "theirs"},
    )
    baseline = len(github.log())
    env = clean_env(**github.env())
    first = run_init_cli(git_repo, "--yes", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "exists     label autoheal\n" in first.stdout
    posts = [e.body for e in github.log()[baseline:] if e.method == "POST"]
    assert [p["name"] for p in posts] == [lab.name for lab in LABELS if lab.name != "autoheal"]
    for p in posts:
        assert len(p["name"]) <= 50 and len(p["description"]) <= 100 and len(p["color"]) == 6
    assert github.labels["autoheal"]["description"] == "theirs"  # existing labels are not modified
    assert all(lab.name.lower() in github.labels for lab in LABELS)

    second = run_init_cli(git_repo, "--yes", env=env)
    assert second.returncode == 0
    assert "Nothing to change" in second.stdout
    assert sum(e.method == "POST" for e in github.log()[baseline:]) == len(posts)


def test_labels_only_run_still_asks(git_repo: Path, github: GitHubStandin) -> None:
    """When only labels are missing, the plan lists them and 'n' creates none."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    result = run_init_cli(git_repo, answer="n\n", env=clean_env(**github.env()))
    assert result.returncode == 1
    assert "create     label source:browser" in result.stdout
    assert not any(e.method == "POST" for e in github.log())


def test_bad_token_falls_back_to_listing_labels(git_repo: Path, github: GitHubStandin) -> None:
    """A token GitHub rejects does not stop init: the files are written and the labels listed."""
    env = clean_env(**(github.env() | {"GITHUB_TOKEN": "wrong"}))
    result = run_init_cli(git_repo, "--yes", env=env)
    assert result.returncode == 0, result.stdout
    assert "HTTP 401" in result.stdout
    assert "gh label create source:mcp " in result.stdout
    assert (git_repo / WORKFLOW).is_file()


def test_label_definitions_fit_githubs_limits() -> None:
    """Every label has a name of at most 50 characters, a 6-digit hex colour and a short description."""
    assert {lab.name for lab in LABELS} == {
        "autoheal",
        "autoheal:hold",
        "autoheal:needs-human",
        "autoheal:unverified",
        "source:cli",
        "source:mcp",
        "source:browser",
        "source:node",
    }
    for lab in LABELS:
        assert len(lab.name) <= 50
        assert len(lab.color) == 6 and int(lab.color, 16) >= 0 and not lab.color.startswith("#")
        assert 0 < len(lab.description) <= 100


@pytest.mark.parametrize("base", [None, "develop"])
def test_workflows_pass_actionlint_and_the_workflow_schema(git_repo: Path, base: str | None) -> None:
    """The written workflows pass actionlint and check-jsonschema's GitHub-workflows schema."""
    args = ["--yes"] + (["--base-branch", base] if base else [])
    assert run_init_cli(git_repo, *args).returncode == 0
    files = [str(git_repo / WORKFLOW), str(git_repo / SETUP)]
    lint = subprocess.run(
        [tool("actionlint"), "-no-color", *files],
        cwd=git_repo,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    schema = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_actionlint_would_catch_a_broken_workflow(git_repo: Path) -> None:
    """The lint check can fail: actionlint rejects a workflow with an undefined expression context."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    path = git_repo / WORKFLOW
    path.write_text(path.read_text().replace("github.event.issue.number ||", "githubb.event.issue.number ||", 1))
    lint = subprocess.run(
        [tool("actionlint"), "-no-color", str(path)], capture_output=True, check=False, text=True, timeout=120
    )
    assert lint.returncode != 0


def test_workflow_never_interpolates_expressions_into_run(git_repo: Path) -> None:
    """Event data reaches the scripts through env: no run: block contains a ${{ }} expression."""
    assert run_init_cli(git_repo, "--yes").returncode == 0
    doc = YAML(typ="safe").load((git_repo / WORKFLOW).read_text())
    assert doc["permissions"] == {}
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    runs = [s["run"] for s in steps if "run" in s]
    assert len(runs) == 3
    assert all("${{" not in r for r in runs)
    assert doc["jobs"]["gate"]["permissions"] == {"contents": "read", "issues": "write", "pull-requests": "read"}
    assert "autoheal-issue-" in doc["concurrency"]["group"]
    on = doc["on"]
    assert on["issues"]["types"] == ["opened", "labeled", "edited"]
    env = doc["jobs"]["gate"]["steps"][1]["env"]
    assert env["AUTOHEAL_BOT_LOGIN"] == "${{ vars.AUTOHEAL_BOT_LOGIN }}"
    assert "vars.AUTOHEAL_BOT_LOGIN" in doc["jobs"]["gate"]["if"]  # edits by anyone else start no run
    assert on["workflow_dispatch"]["inputs"]["issue"]["required"] is True


def test_console_script_runs_init(git_repo: Path) -> None:
    """The installed ``otel-autoheal`` console script exposes init with the same plan and result."""
    proc = subprocess.run(
        [tool("otel-autoheal"), "init", "--dry-run"],
        cwd=git_repo,
        env=clean_env(),
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"new        {WORKFLOW}" in proc.stdout and "Dry run: nothing written." in proc.stdout
    assert snapshot(git_repo) == {}


@pytest.mark.parametrize("url", ["git@github.com:acme/widgets.git", "https://github.com/acme/widgets"])
def test_repository_comes_from_the_origin_remote(git_repo: Path, url: str) -> None:
    """Without --repo or GITHUB_REPOSITORY the origin remote names the repository for the label commands."""
    subprocess.run(["git", "-C", str(git_repo), "remote", "add", "origin", url], check=True, timeout=60)
    result = run_init_cli(git_repo, "--dry-run")
    assert result.returncode == 0
    assert f"plan for {git_repo} (acme/widgets)" in result.stdout
    assert "no GITHUB_TOKEN/GH_TOKEN in the environment" in result.stdout
    assert "gh label create autoheal:hold --color fbca04" in result.stdout
    assert result.stdout.count("gh label create") == result.stdout.count("--repo acme/widgets") - 1 == len(LABELS)
    assert "gh variable set AUTOHEAL_BOT_LOGIN --body LOGIN --repo acme/widgets" in result.stdout
    explicit = run_init_cli(git_repo, "--dry-run", "--repo", "other/repo")
    assert "(other/repo)" in explicit.stdout


def test_bot_login_is_derived_from_the_token(git_repo: Path, github: GitHubStandin) -> None:
    """init names the AUTOHEAL_BOT_LOGIN value from GET /user of the token, with the command that sets it."""
    result = run_init_cli(git_repo, "--dry-run", env=clean_env(**github.env()))
    assert result.returncode == 0, result.stdout
    assert ("variable AUTOHEAL_BOT_LOGIN=autoheal-bot (the user of the token in the environment): "
            f"gh variable set AUTOHEAL_BOT_LOGIN --body autoheal-bot --repo {github.repository}") in result.stdout


def test_app_token_leaves_the_bot_login_to_the_user(git_repo: Path, github: GitHubStandin) -> None:
    """A GitHub App token cannot read GET /user (403): init says so and how to set the variable by hand."""
    env = clean_env(**(github.env() | {"GITHUB_TOKEN": github.add_app("autoheal-app")}))
    result = run_init_cli(git_repo, "--dry-run", env=env)
    assert result.returncode == 0, result.stdout
    assert "variable AUTOHEAL_BOT_LOGIN: unknown, the token may not read its user" in result.stdout
    assert "--bot-login LOGIN" in result.stdout
    explicit = run_init_cli(git_repo, "--dry-run", "--bot-login", "autoheal-app[bot]", env=env)
    assert "variable AUTOHEAL_BOT_LOGIN=autoheal-app[bot] (from --bot-login)" in explicit.stdout


def test_bad_bot_login_is_refused(git_repo: Path) -> None:
    """--bot-login must look like a GitHub login; nothing is written otherwise."""
    result = run_init_cli(git_repo, "--yes", "--bot-login", "alice; rm -rf /")
    assert result.returncode == 2
    assert "--bot-login" in result.stdout
    assert snapshot(git_repo) == {}
