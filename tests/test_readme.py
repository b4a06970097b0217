"""The READMEs stay true to the code: every setting is in the configuration table with its default, and links resolve."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from otel_autoheal.config import Config, ScrubConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "collector-config/README.md", "js-instrumentation/README.md", "instrumentation/README.md",
        "docs/architecture.md"]
_TABLE_HEADER = "| key (env `AUTOHEAL_<KEY>`) | default | meaning |"
_NOT_SETTINGS = {"set_by"}


def _config_rows() -> list[tuple[str, str]]:
    """(key cell, default cell) of each row of README's configuration table."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(_TABLE_HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows.append((cells[0], cells[1]))
    return rows


def _documented_defaults() -> dict[str, str]:
    """Each key named in the table → its default cell; ``a`` / ``b`` rows pair keys and defaults in order."""
    out: dict[str, str] = {}
    for key_cell, default_cell in _config_rows():
        names = re.findall(r"`([^`]+)`", key_cell)
        if len(names) == 1 and names[0].startswith("["):
            section = names[0][1:].split("]")[0]
            out[section] = default_cell
            subs = [sub.strip() for sub in names[0].split("]", 1)[1].split("/") if sub.strip()]
            sub_defaults = default_cell.split(" / ")
            for i, sub in enumerate(subs):
                out[f"{section}.{sub}"] = sub_defaults[i] if len(sub_defaults) == len(subs) else default_cell
            continue
        defaults = default_cell.split(" / ") if len(names) > 1 else [default_cell]
        for i, name in enumerate(names):
            out[name] = defaults[i] if len(defaults) == len(names) else default_cell
    return out


def _rendered(value: object) -> list[str]:
    """How a scalar default may be written in the table: `true`, `3` for 3.0, a host:port or its `:port`."""
    if isinstance(value, bool):
        return [f"`{str(value).lower()}`"]
    if isinstance(value, float):
        return [f"`{value:g}`"]
    text = f"`{value}`"
    if isinstance(value, str) and re.fullmatch(r"[\w.]+:\d+", value):
        return [text, f"`{value[value.rindex(':'):]}`"]
    return [text]


def test_every_setting_is_in_the_configuration_table_with_its_default() -> None:
    """Each Config and [scrub] field has a row, and a non-empty scalar default is written in its default cell."""
    documented = _documented_defaults()
    fields = [(f.name, f.default) for f in dataclasses.fields(Config) if f.name not in _NOT_SETTINGS]
    fields += [(f"scrub.{f.name}", f.default) for f in dataclasses.fields(ScrubConfig)]
    missing = [name for name, _ in fields if name not in documented]
    assert not missing, f"settings missing from README's configuration table: {missing}"
    wrong = [(name, default, documented[name]) for name, default in fields
             if isinstance(default, (bool, int, float, str)) and default != ""
             and not any(form in documented[name] for form in _rendered(default))]
    assert not wrong, f"README default differs from config.py (key, code default, README cell): {wrong}"


def test_configuration_table_names_only_real_settings() -> None:
    """Every key in README's configuration table is a Config field, so a renamed setting cannot linger there."""
    known = {f.name for f in dataclasses.fields(Config)} | {f"scrub.{f.name}" for f in dataclasses.fields(ScrubConfig)}
    unknown = sorted(set(_documented_defaults()) - known)
    assert not unknown, f"README's configuration table names settings config.py does not have: {unknown}"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (lower case, punctuation dropped, spaces as hyphens)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    heads = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", head.lower()).replace(" ", "-") for head in heads}


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_and_anchors_resolve(doc: str) -> None:
    """Every relative link of the document names an existing file, and every #anchor a heading of its target."""
    path = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{doc}: broken links {broken}"


_REPO_DIRS = ("tests/", "bench/", "scripts/", "otel_autoheal/", "collector-config/", "examples/", "docs/",
              "instrumentation/", "js-instrumentation/", ".ci/")
#: Named in the docs but made by a build, an install or the onboarded repository, or in another
#: project (the OpenTelemetry semantic conventions), so not tracked here.
_NOT_TRACKED = ("js-instrumentation/dist/", "tests/conformance/node/node_modules", "tests/autoheal", "docs/gen-ai/")


@pytest.mark.parametrize("doc", DOCS)
def test_repository_paths_named_in_backticks_exist(doc: str) -> None:
    """A `tests/…`, `bench/…` or other repository path quoted in the document exists, so a renamed file is noticed."""
    path = ROOT / doc
    missing = []
    for quoted in set(re.findall(r"`([^`\s]+)`", path.read_text(encoding="utf-8"))):
        named = quoted.split("::")[0].rstrip("/")
        if not named.startswith(_REPO_DIRS) or named.startswith(_NOT_TRACKED) or re.search(r"[<>*{}…]", named):
            continue
        if not (ROOT / named).exists() and not (path.parent / named).exists():
            missing.append(quoted)
    assert not missing, f"{doc}: paths that do not exist: {sorted(missing)}"
