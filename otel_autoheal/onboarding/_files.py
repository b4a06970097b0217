"""The files ``otel-autoheal init`` writes and how each one changes (new, appended, updated, unchanged)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from otel_autoheal.errors import ConfigError

__all__ = [
    "SECTION_BEGIN",
    "SECTION_END",
    "FileChange",
    "merge_section",
    "plan_files",
    "render_workflow",
    "template",
]

SECTION_BEGIN = "<!-- autoheal:begin -->"
SECTION_END = "<!-- autoheal:end -->"

WORKFLOW_PATH = ".github/workflows/autoheal.yml"
GATE_PATH = ".github/autoheal/gate.py"
SCAFFOLD_PATH = ".github/autoheal/scaffold.py"
INSTRUCTIONS_PATH = ".github/copilot-instructions.md"
SETUP_STEPS_PATH = ".github/workflows/copilot-setup-steps.yml"

# A branch name we can put inside a quoted workflow expression without escaping anything.
_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


@dataclass(frozen=True)
class FileChange:
    """One file of the plan: ``action`` is new, appended, updated, unchanged or kept."""

    path: str
    action: str
    content: str | None  # what to write; None when nothing is written
    note: str = ""

    @property
    def writes(self) -> bool:
        return self.content is not None


def template(name: str) -> str:
    """The text of a packaged template, byte for byte."""
    return resources.files("otel_autoheal.onboarding").joinpath("templates", name).read_text(encoding="utf-8")


def render_workflow(base_branch: str | None) -> str:
    """The autoheal workflow with ``base_branch`` as the default base (empty: the repository default)."""
    base = base_branch or ""
    if base and (not _BRANCH_RE.fullmatch(base) or ".." in base):
        raise ConfigError("--base-branch", f"{base!r} is not a branch name init can write into a workflow")
    text = template("autoheal.yml")
    text = text.replace("__AUTOHEAL_DEFAULT_BASE_DOC__", base or "the repository's default branch")
    return text.replace("__AUTOHEAL_DEFAULT_BASE__", base)


def merge_section(existing: str | None, section: str) -> tuple[str, str]:
    """``existing`` with the autoheal section appended or replaced, and the action taken.

    Only the text between the markers (markers included) is ever replaced; everything else
    is kept byte for byte. A file with a begin marker but no end marker after it is refused:
    guessing where the section ends could delete the user's text.
    """
    section = section.rstrip("\n") + "\n"
    if existing is None or existing == "":
        return section, "new"
    begin = existing.find(SECTION_BEGIN)
    if begin < 0:
        if SECTION_END in existing:
            raise ConfigError(INSTRUCTIONS_PATH, f"has {SECTION_END} without {SECTION_BEGIN}; fix the markers by hand")
        sep = "" if existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
        return existing + sep + section, "appended"
    end = existing.find(SECTION_END, begin)
    if end < 0 or existing.find(SECTION_BEGIN, begin + 1) >= 0:
        raise ConfigError(
            INSTRUCTIONS_PATH, f"the {SECTION_BEGIN} … {SECTION_END} markers are unbalanced; fix them by hand"
        )
    end += len(SECTION_END)
    if existing[end : end + 1] == "\n":
        end += 1
    merged = existing[:begin] + section + existing[end:]
    return merged, ("unchanged" if merged == existing else "updated")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _owned(root: Path, rel: str, content: str) -> FileChange:
    """A file init owns outright: written when missing, replaced when different."""
    current = _read(root / rel)
    if current is None:
        return FileChange(rel, "new", content)
    if current == content:
        return FileChange(rel, "unchanged", None)
    return FileChange(rel, "updated", content, "replaced with the current template")


def plan_files(root: Path, base_branch: str | None) -> list[FileChange]:
    """What init would do to each file under the repository checkout ``root``."""
    changes = [
        _owned(root, WORKFLOW_PATH, render_workflow(base_branch)),
        _owned(root, GATE_PATH, template("gate.py")),
        _owned(root, SCAFFOLD_PATH, template("scaffold.py")),
    ]
    merged, action = merge_section(_read(root / INSTRUCTIONS_PATH), template("copilot-instructions-section.md"))
    changes.append(
        FileChange(INSTRUCTIONS_PATH, action, None if action == "unchanged" else merged, "autoheal section only")
    )
    if _read(root / SETUP_STEPS_PATH) is None:
        changes.append(FileChange(SETUP_STEPS_PATH, "new", template("copilot-setup-steps.yml"), "skeleton"))
    else:
        changes.append(FileChange(SETUP_STEPS_PATH, "kept", None, "exists; init leaves it alone"))
    return changes
