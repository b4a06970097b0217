"""Pytest plugin: the ``github_standin`` fixture.

Use it with ``pytest_plugins = ["tests.github_standin.fixture"]`` in a conftest. Each test gets a
fresh stand-in on a free port; at teardown the test fails if any request or response did not
match GitHub's OpenAPI description, or if the client went over GitHub's secondary rate limit.
The 13 MB description is parsed once per session (``github_openapi``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .openapi import OpenAPIDescription, load_description
from .server import GitHubStandin

__all__ = ["github_openapi", "github_standin"]


@pytest.fixture(scope="session")
def github_openapi() -> OpenAPIDescription:
    """GitHub's OpenAPI description, loaded once per session."""
    return load_description()


@pytest.fixture
def github_standin(github_openapi: OpenAPIDescription, request: pytest.FixtureRequest) -> Iterator[GitHubStandin]:
    """A started stand-in; ``.env()`` gives GITHUB_API_URL / GITHUB_REPOSITORY / GITHUB_TOKEN."""
    marker = request.node.get_closest_marker("github_standin")
    kwargs = dict(marker.kwargs) if marker else {}
    standin = GitHubStandin(spec=github_openapi, **kwargs).start()
    try:
        yield standin
    finally:
        standin.stop()
    problems = list(standin.validation_errors)
    assert not problems, "stand-in saw requests/responses outside GitHub's OpenAPI description:\n" + "\n".join(
        problems[:20]
    )
    assert standin.secondary_limit_violations == 0, (
        f"client exceeded GitHub's secondary rate limit {standin.secondary_limit_violations} times"
    )
    assert standin.search_limit_violations == 0, (
        f"client exceeded GitHub's search rate limit {standin.search_limit_violations} times"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "github_standin(**kwargs): keyword arguments for the GitHubStandin of this test (e.g. search_lag=5)"
    )
