"""Warn about ``AUTOHEAL_*`` environment variables that nothing reads (usually a typo).

A misspelt variable is otherwise silently ignored and its default used. The known names come from
every place the project reads one, so that a legitimate variable never warns:
``tests/service/test_config.py`` checks this list against every ``AUTOHEAL_*`` name in the repository.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import fields

from otel_autoheal.config import ENV_CONFIG_FILE, ENV_PREFIX, Config

__all__ = ["known_env_vars", "unknown_env_warnings"]

#: Read outside ``Config``, by modules too heavy to import at every start (the GitHub sink loads
#: PyGithub, the exporters the OpenTelemetry SDK) or by other programs of the project. The tests
#: check this list against those modules and against every name in the repository.
_ELSEWHERE = frozenset({
    # the GitHub sink (otel_autoheal.sinks.github.config.ENV_KEYS)
    "AUTOHEAL_GITHUB_LABELS", "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL", "AUTOHEAL_GITHUB_WRITES_PER_MINUTE",
    "AUTOHEAL_GITHUB_WRITES_PER_HOUR", "AUTOHEAL_GITHUB_NEW_ISSUES_PER_HOUR", "AUTOHEAL_GITHUB_COMMENT_INTERVAL",
    "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL", "AUTOHEAL_GITHUB_TIMEOUT", "AUTOHEAL_GITHUB_BACKOFF_BASE",
    "AUTOHEAL_GITHUB_BACKOFF_MAX", "AUTOHEAL_GITHUB_SEARCH_BEFORE_CREATE", "AUTOHEAL_GITHUB_HANDOFF", "AUTOHEAL_GITHUB_LOGIN",
    "AUTOHEAL_GITHUB_HANDOFF_MIN_OCCURRENCES", "AUTOHEAL_GITHUB_HANDOFF_DAILY_BUDGET",
    "AUTOHEAL_GITHUB_HANDOFF_DRY_RUN", "AUTOHEAL_GITHUB_HANDOFF_REQUIRE_IN_APP",
    "AUTOHEAL_GITHUB_HANDOFF_UNTRUSTED_SOURCES", "AUTOHEAL_GITHUB_HANDOFF_ALLOW_SOURCES",
    "AUTOHEAL_GITHUB_HANDOFF_BASE_BRANCH", "AUTOHEAL_GITHUB_HANDOFF_TARGET_REPO",
    "AUTOHEAL_GITHUB_ISSUE_POLL_INTERVAL", "AUTOHEAL_GITHUB_VERIFY_WINDOW", "AUTOHEAL_GITHUB_CLAIM_LEASE",
    # otel_autoheal.sinks.ENV_SINK and otel_autoheal.exporters (ENV_EXPORTER_QUEUE_SIZE)
    "AUTOHEAL_SINK", "AUTOHEAL_EXPORTER_QUEUE_SIZE",
    # the instrumentation package (instrumentation/src/autoheal_instrumentation/_config.py)
    "AUTOHEAL_EXPORT_TIMEOUT", "AUTOHEAL_SPOOL_DIR", "AUTOHEAL_SPOOL_MAX_FILES", "AUTOHEAL_SPOOL_MAX_BYTES",
    "AUTOHEAL_CLI_MODE", "AUTOHEAL_LOG_BUFFER",
    # the onboarding workflow and its scripts (otel_autoheal/onboarding/templates)
    "AUTOHEAL_ISSUE_NUMBER", "AUTOHEAL_BOT_LOGIN", "AUTOHEAL_ALLOW_SOURCES", "AUTOHEAL_MIN_OCCURRENCES",
    "AUTOHEAL_REQUIRE_IN_APP", "AUTOHEAL_DAILY_BUDGET", "AUTOHEAL_COPILOT", "AUTOHEAL_COPILOT_TOKEN", "AUTOHEAL_BASE_BRANCH",
    "AUTOHEAL_ALLOW_UNTRUSTED", "AUTOHEAL_CUSTOM_INSTRUCTIONS", "AUTOHEAL_FALLBACK_PR", "AUTOHEAL_FALLBACK_TEST_DIR",
    "AUTOHEAL_TARGET_REPO", "AUTOHEAL_UNTRUSTED_LABELS", "AUTOHEAL_LABEL", "AUTOHEAL_TEST_DIR",
    # collector configs and their build script (collector-config/)
    "AUTOHEAL_OTLP_ENDPOINT", "AUTOHEAL_OTLP_INSECURE", "AUTOHEAL_BACKENDS", "AUTOHEAL_BIN_CACHE",
    "AUTOHEAL_BUILD_JOBS",
    # docker-compose.scale.yml (the PostgreSQL password it gives the database and the instances)
    "AUTOHEAL_DB_PASSWORD",
    # scripts/, examples/ and the test suites
    "AUTOHEAL_PYTHON", "AUTOHEAL_VENV", "AUTOHEAL_SETUP", "AUTOHEAL_CHROMIUM", "AUTOHEAL_REQUIRE_SERVICE",
    "AUTOHEAL_STACK_DIR", "AUTOHEAL_STACK_TIMEOUT", "AUTOHEAL_CONFORMANCE_CACHE",
    "AUTOHEAL_DEMO_STATE", "AUTOHEAL_TEST_MCP_SERVER", "AUTOHEAL_TEST_MCP_TRANSPORT", "AUTOHEAL_TEST_MCP_OK_TOOL",
    "AUTOHEAL_TEST_MCP_OK_ARGS", "AUTOHEAL_TEST_MCP_FAILING_TOOL", "AUTOHEAL_TEST_MCP_FAILING_ARGS",
    "AUTOHEAL_TEST_MCP_FAILING_MESSAGE",
})


def known_env_vars() -> frozenset[str]:
    """Every ``AUTOHEAL_*`` variable some part of otel-autoheal reads."""
    from_config = {ENV_PREFIX + f.name.upper() for f in fields(Config) if f.name not in ("scrub", "github", "set_by")}
    return frozenset(from_config | {ENV_CONFIG_FILE} | _ELSEWHERE)


def unknown_env_warnings(env: Mapping[str, str]) -> list[str]:
    """One warning per ``AUTOHEAL_*`` variable that nothing reads, naming the closest known one."""
    known = known_env_vars()
    warnings = []
    for name in sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (see the configuration table in the README)"
        warnings.append(f"warning: {name} is not a setting otel-autoheal knows and is ignored{hint}")
    return warnings
