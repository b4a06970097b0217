"""The service's API hand-off and the repository's workflow gate decide alike on the same groups.

The rules live once, in ``onboarding/templates/gate.py`` (stdlib-only, copied into repositories);
the service imports them. What could still drift is the data each side feeds them: the service
decides from its database, the gate from the ``autoheal:data`` block the service wrote into the
issue. So each case here goes through the real sink into the stand-in, and the installed gate
script then decides on the issue the sink filed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gh_harness import Harness, fingerprint, wait_for

GATE = Path(__file__).resolve().parents[2] / "otel_autoheal" / "onboarding" / "templates" / "gate.py"

#: name -> (occurrences as make_occurrence kwargs, sources allowed on both sides, hand-off expected)
CASES: dict[str, tuple[list[dict[str, Any]], tuple[str, ...], bool]] = {
    "trusted-enough": ([{}] * 3, (), True),
    "too-few": ([{}] * 2, (), False),
    "browser": ([{"source": "browser"}] * 3, (), False),
    "browser-allowed": ([{"source": "browser"}] * 3, ("browser",), True),
    "unknown-source": ([{"source": ""}] * 3, (), False),
    "no-in-app": ([{"in_app": False}] * 3, (), False),
    "receiver-untrusted": ([{"ingest_trust": "untrusted"}] * 3, (), False),
    "tainted-later": ([{}, {}, {"ingest_trust": "untrusted"}], (), False),
}


def _gate(harness: Harness, number: int, allow: tuple[str, ...]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "AUTOHEAL_"))}
    env.update(harness.standin.env(), AUTOHEAL_ISSUE_NUMBER=str(number), AUTOHEAL_BOT_LOGIN=harness.standin.login,
               AUTOHEAL_COPILOT="false", AUTOHEAL_ALLOW_SOURCES=",".join(allow))
    proc = subprocess.run([sys.executable, str(GATE)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_service_and_gate_agree(harness: Harness, case: str) -> None:
    """The sink's hand-off decision (dry run) and the gate's decision on the issue it filed are the same."""
    occurrences, allow, expected = CASES[case]
    harness.start(handoff="copilot", handoff_dry_run=True, handoff_allow_sources=allow)
    fp = fingerprint(f"parity-{case}")
    for kwargs in occurrences:
        harness.emit(fp, **kwargs)
    assert harness.sink is not None
    number = int(wait_for(lambda: harness.sink.ledger.issue_numbers().get(fp), what="the issue"))
    harness.wait_idle()
    row = harness.sink.ledger.get_issue(fp)
    assert row is not None
    service_hands_off = row.handoff == "dry_run"
    gate_says = _gate(harness, number, allow)
    gate_hands_off = ": eligible: gates passed" in gate_says
    assert (service_hands_off, gate_hands_off) == (expected, expected), (row.handoff, gate_says)
