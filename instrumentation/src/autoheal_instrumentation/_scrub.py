"""Remove secrets from argv, free text and tool arguments before they leave the process.

The service scrubs again; this is the first line, so secrets never reach the wire or the spool.
The rules (``scrub_rules.toml``) and the engine (``_scrub_engine.py``) are byte-identical copies
of the service's, so both sides redact the same things with the same labels.

Engine: Python's ``re``, not google-re2 (the service's engine). google-re2 is a compiled wheel
(RE2 + abseil) not built for every platform and Python an app may run on, and building its
automata would cost a failing run ~250 ms; this distribution must stay light and install
anywhere. The rule file is written so that Python's backtracking engine also runs in linear time
(bounded repeats, none nested in another that can repeat, no lookaround; the tests check the
structure of every regex and bench/scrub.py measures the growth), and texts beyond the size
budget are cut first.
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
