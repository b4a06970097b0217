"""Adapter for an ``argparse.ArgumentParser``: the run starts when arguments are parsed.

Nothing wraps the host's main, so the failure reaches the run through the chained excepthook and
the run ends at exit; the command comes from the parsed subparsers.
"""

from __future__ import annotations

import sys

from . import _cli_run

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from typing import Any

__all__ = ["instrument_argparse"]


def _subparser_choices(parser: Any) -> dict[str, Any] | None:
    for action in getattr(parser, "_actions", ()):
        choices = getattr(action, "choices", None)
        if type(action).__name__ == "_SubParsersAction" and isinstance(choices, dict):
            return choices
    return None


def _subcommand(parser: Any, argv: list[str]) -> str | None:
    from ._cli_command import subcommand_from_argv  # only needed when the run ends

    return subcommand_from_argv(_subparser_choices, parser, argv)


def instrument_argparse(parser: Any, options: dict[str, Any]) -> Any:
    """Instrument ``parser`` in place (``parse_args`` goes through ``parse_known_args``) and return it."""
    original = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        run = _cli_run.init_cli(**options)
        result = original(args, namespace)
        if run is not None:
            argv = list(sys.argv[1:] if args is None else args)
            run.command_resolver = lambda: _subcommand(parser, argv)
        return result

    parser.parse_known_args = parse_known_args
    return parser
