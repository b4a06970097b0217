"""Remove secrets from argv, free text and tool arguments before they leave the process.

The service scrubs again; this is the first line, so secrets never reach the wire or the spool.
The rules (``scrub_rules.toml``) and the engine (``_scrub_engine.py``) are byte-identical copies
of the service's, so both sides redact the same things with the same labels.

Engine choice: google-re2 when it is installed (``pip install 'otel-autoheal-instrumentation[re2]'``),
otherwise Python's ``re``. The instrumentation does not depend on google-re2: it is a compiled
wheel (RE2 + abseil) not built for every platform and Python version an app may use, and this
distribution must stay light and install anywhere. The rule file is written so that Python's
backtracking engine also runs in linear time (bounded, non-multiplying repeats; the tests check the
structure and bench/scrub.py measures the growth), and texts beyond the size budget are cut first.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from ._scrub_engine import Engine

__all__ = ["is_secret_name", "scrub_argv", "scrub_text", "scrub_value"]


@cache
def _engine() -> Engine:
    return Engine()


def is_secret_name(name: str) -> bool:
    """Tell whether an option, key or variable name usually holds a secret."""
    return _engine().is_secret_name(name)


def scrub_text(text: str) -> str:
    """Redact credentials in URLs, secret-named assignments and known token formats."""
    return _engine().text(text)


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """Scrub a command line: ``--password=x``, ``--token x``, ``KEY=value``, URLs and token formats."""
    return _engine().argv([str(a) for a in argv])


def scrub_value(value: Any) -> Any:
    """Scrub a JSON-like value: secret-named keys are redacted, strings are scrubbed."""
    return _engine().value(value)
