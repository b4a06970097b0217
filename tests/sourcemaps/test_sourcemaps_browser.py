"""Minified browser errors from a real esbuild bundle, thrown in real Chromium, resolved by source maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sourcemap_support import Site, cli, fresh_build

BUG_LINE = "return item.price.amount * item.quantity;"


def _stack_location(result: dict[str, Any]) -> str:
    """The innermost ``file:line:col`` Chromium reported for the page's error."""
    assert result["pageErrors"], result
    match = re.search(r"\((http://[^)]+/assets/app\.min\.js:\d+:\d+)\)", result["pageErrors"][0])
    assert match, result["pageErrors"][0]
    return match.group(1).rsplit("/", 1)[-1]


def test_two_releases_land_in_one_group_with_the_original_frames(
    autoheal_factory: Callable[..., Any], site: Site, shop_builds: dict[str, Path],
    throw_in_chromium: Callable[[str], dict[str, Any]], tmp_path: Path,
) -> None:
    """Release 1.0.0 (found by release + URL) and 1.1.0 (found by Debug ID only) group together and show src/cart.js."""
    service = autoheal_factory("--cors-origin", site.origin)
    state = ["--state", str(service.state_dir)]
    build_a = fresh_build(shop_builds, "a", tmp_path)
    cli("sourcemaps", "upload", *state, "--release", "1.0.0", str(build_a / "dist"))
    site.deploy(build_a, "1.0.0", service.http_endpoint)
    where_a = _stack_location(throw_in_chromium(f"{site.origin}/index.html"))

    issue = service.wait_for_issues(1)[0]
    assert "`lineTotal` in `src/cart.js:3`" in issue["body"], issue["body"]
    assert BUG_LINE in issue["body"]
    assert "src/cart.js:lineTotal" in issue["body"] and "app.min.js:" not in issue["body"].split("## Grouping")[1]
    assert "Source maps:" not in issue["body"]

    # Release 1.1.0 adds code above the bug; its maps are uploaded under a CI build name the page
    # never sends, so only the Debug ID the SDK reports can find them.
    build_b = fresh_build(shop_builds, "b", tmp_path)
    injected = cli("sourcemaps", "inject", str(build_b / "dist")).stdout
    assert re.search(r"^[0-9a-f-]{36}  .*app\.min\.js$", injected, re.M), injected
    cli("sourcemaps", "upload", *state, "--release", "ci-build-742", str(build_b / "dist"))
    site.deploy(build_b, "1.1.0", service.http_endpoint)
    where_b = _stack_location(throw_in_chromium(f"{site.origin}/index.html"))
    assert where_a != where_b  # the minified positions differ between the releases

    issues = service.wait_for_issues(lambda found: bool(found) and found[0]["count"] >= 2)
    assert len(issues) == 1, [i["title"] for i in issues]
    body = issues[0]["body"]
    assert issues[0]["versions"] == ["1.0.0", "1.1.0"]
    assert "`lineTotal` in `src/cart.js:8`" in body, body
    assert BUG_LINE in body and "Source maps:" not in body


def test_without_an_upload_the_issue_says_the_map_is_missing(
    autoheal_factory: Callable[..., Any], site: Site, shop_builds: dict[str, Path],
    throw_in_chromium: Callable[[str], dict[str, Any]], tmp_path: Path,
) -> None:
    """No map for the release: frames stay minified and the issue names the release and file it lacked."""
    service = autoheal_factory("--cors-origin", site.origin)
    site.deploy(fresh_build(shop_builds, "a", tmp_path), "1.0.0", service.http_endpoint)
    throw_in_chromium(f"{site.origin}/index.html")

    body = service.wait_for_issues(1)[0]["body"]
    note = next((line for line in body.splitlines() if line.startswith("**Source maps:**")), "")
    assert "3 JavaScript frames not resolved: no source map for release 1.0.0 and file http:" in note, body
    assert "/assets/app.min.js" in note
    assert "src/cart.js" not in body


def test_sourcemaps_dir_resolves_the_deployed_build_without_an_upload(
    autoheal_factory: Callable[..., Any], site: Site, shop_builds: dict[str, Path],
    throw_in_chromium: Callable[[str], dict[str, Any]], tmp_path: Path,
) -> None:
    """With sourcemaps_dir pointing at the served directory, the maps next to the bundles resolve the frames."""
    service = autoheal_factory("--cors-origin", site.origin, env={"AUTOHEAL_SOURCEMAPS_DIR": str(site.root)})
    site.deploy(fresh_build(shop_builds, "a", tmp_path), "1.0.0", service.http_endpoint)
    throw_in_chromium(f"{site.origin}/index.html")

    body = service.wait_for_issues(1)[0]["body"]
    assert "`lineTotal` in `src/cart.js:3`" in body, body
    assert BUG_LINE in body
