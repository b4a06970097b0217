"""``otel-autoheal init``: onboard a GitHub repository so autoheal issues reach the Copilot coding agent.

Run inside the repository's checkout, it shows a plan and, once confirmed, writes
``.github/workflows/autoheal.yml`` (gates + Copilot hand-off + optional fallback PR),
``.github/autoheal/gate.py`` and ``.github/autoheal/scaffold.py`` (stdlib scripts the workflow
runs), the autoheal section of ``.github/copilot-instructions.md`` and, when missing,
``.github/workflows/copilot-setup-steps.yml``; it creates the autoheal labels when a token is
available. Running it again changes nothing.

The CLI wires it as::

    sub = subparsers.add_parser("init", help="onboard the repository checked out here")
    add_init_arguments(sub)
    ...
    return run_init(args, sys.stdin, sys.stdout)
"""

from __future__ import annotations

from otel_autoheal.onboarding._command import add_init_arguments, run_init
from otel_autoheal.onboarding._labels import LABELS, Label

__all__ = ["LABELS", "Label", "add_init_arguments", "run_init"]
