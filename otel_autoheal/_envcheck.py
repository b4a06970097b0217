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

#: Read outside ``Config`` and the GitHub sink's settings, by modules too heavy to import here
#: (the in-process exporters) or by other programs of the project.
_ELSEWHERE = frozenset({
    # otel_autoheal.sinks.ENV_SINK and otel_autoheal.exporters (ENV_EXPORTER_QUEUE_SIZE)
    "AUTOHEAL_SINK", "AUTOHEAL_EXPORTER_QUEUE_SIZE",
    # the instrumentation package (instrumentation/src/autoheal_instrumentation/_config.py)
    "AUTOHEAL_EXPORT_TIMEOUT", "AUTOHEAL_SPOOL_DIR", "AUTOHEAL_SPOOL_MAX_FILES", "AUTOHEAL_SPOOL_MAX_BYTES",
    "AUTOHEAL_CLI_MODE", "AUTOHEAL_LOG_BUFFER",
    # the onboarding workflow and its scripts (otel_autoheal/onboarding/templates)
    "AUTOHEAL_ISSUE_NUMBER", "AUTOHEAL_COPILOT", "AUTOHEAL_COPILOT_TOKEN", "AUTOHEAL_BASE_BRANCH",
    "AUTOHEAL_ALLOW_UNTRUSTED", "AUTOHEAL_CUSTOM_INSTRUCTIONS", "AUTOHEAL_FALLBACK_PR", "AUTOHEAL_FALLBACK_TEST_DIR",
    "AUTOHEAL_TARGET_REPO", "AUTOHEAL_UNTRUSTED_LABELS", "AUTOHEAL_LABEL", "AUTOHEAL_TEST_DIR",
    # collector configs and their build script (collector-config/)
    "AUTOHEAL_OTLP_ENDPOINT", "AUTOHEAL_OTLP_INSECURE", "AUTOHEAL_BACKENDS", "AUTOHEAL_BIN_CACHE",
    "AUTOHEAL_BUILD_JOBS",
    # scripts/, examples/ and the test suites
    "AUTOHEAL_PYTHON", "AUTOHEAL_VENV", "AUTOHEAL_SETUP", "AUTOHEAL_CHROMIUM", "AUTOHEAL_REQUIRE_SERVICE",
    "AUTOHEAL_DEMO_STATE", "AUTOHEAL_TEST_MCP_SERVER", "AUTOHEAL_TEST_MCP_TRANSPORT", "AUTOHEAL_TEST_MCP_OK_TOOL",
    "AUTOHEAL_TEST_MCP_OK_ARGS", "AUTOHEAL_TEST_MCP_FAILING_TOOL", "AUTOHEAL_TEST_MCP_FAILING_ARGS",
    "AUTOHEAL_TEST_MCP_FAILING_MESSAGE",
})


def _config_vars() -> set[str]:
    names = {ENV_PREFIX + f.name.upper() for f in fields(Config) if f.name not in ("scrub", "github")}
    return names | {ENV_CONFIG_FILE}


def known_env_vars() -> frozenset[str]:
    """Every ``AUTOHEAL_*`` variable some part of otel-autoheal reads."""
    # Imported here: it loads the GitHub sink (PyGithub), needed only when a name is not found above.
    from otel_autoheal.sinks.github.config import ENV_KEYS

    return frozenset(_config_vars() | set(ENV_KEYS.values()) | _ELSEWHERE)


def unknown_env_warnings(env: Mapping[str, str]) -> list[str]:
    """One warning per ``AUTOHEAL_*`` variable that nothing reads, naming the closest known one."""
    cheap = _config_vars() | _ELSEWHERE
    suspects = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in cheap)
    if not suspects:
        return []
    known = known_env_vars()
    warnings = []
    for name in suspects:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (see the configuration table in the README)"
        warnings.append(f"warning: {name} is not a setting otel-autoheal knows and is ignored{hint}")
    return warnings
