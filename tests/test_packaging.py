"""The wheels ship what the code reads at run time and the typing marker, built by pip as a user's install would."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package_files(package_dir: Path) -> set[str]:
    """Every file of the package as its wheel path (``pkg/sub/file``), bytecode caches left out."""
    return {str(path.relative_to(package_dir.parent)) for path in package_dir.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.mark.parametrize(("project", "package"), [
    (".", "otel_autoheal"),
    ("instrumentation", "src/autoheal_instrumentation"),
])
def test_wheel_ships_every_package_file_and_py_typed(tmp_path: Path, project: str, package: str) -> None:
    """py.typed, the scrub rules and the onboarding templates are in the wheel, with every module."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT / project)], check=True, timeout=300, cwd=tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package_dir = ROOT / project / package
    expected = _package_files(package_dir)
    assert f"{package_dir.name}/py.typed" in expected, "the package has no py.typed marker"
    assert f"{package_dir.name}/scrub_rules.toml" in expected
    assert expected <= shipped, sorted(expected - shipped)
