"""Adapter for click commands and groups: the command's ``main`` is wrapped in place."""

from __future__ import annotations

from ._cli_plain import wrap_main

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from typing import Any

    from ._cli_run import CliRun

__all__ = ["click_choices", "instrument_click"]


def click_choices(node: Any) -> dict[str, Any] | None:
    """The sub-commands of a click group (typer builds the same tree)."""
    commands = getattr(node, "commands", None)
    return commands if isinstance(commands, dict) else None


def instrument_click(command: Any, options: dict[str, Any]) -> Any:
    """Instrument a ``click.Command`` (or group) in place; the span is named after the sub-command run."""

    def resolver_for(run: CliRun) -> None:
        argv = list(run.argv[1:])

        def resolve() -> str | None:
            from ._cli_command import subcommand_from_argv

            return subcommand_from_argv(click_choices, command, argv)

        run.command_resolver = resolve

    command.main = wrap_main(command.main, options, resolver_for)
    return command
