"""Adapter for typer apps: calling the app runs inside the CLI run, sub-commands named from click's tree."""

from __future__ import annotations

from ._cli_click import click_choices
from ._cli_plain import wrap_main

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from typing import Any

    from ._cli_run import CliRun

__all__ = ["instrument_typer"]


def instrument_typer(app: Any, options: dict[str, Any]) -> Any:
    """Instrument a ``typer.Typer`` in place and return it."""
    base = type(app)

    def resolver_for(run: CliRun) -> None:
        argv = list(run.argv[1:])

        def resolve() -> str | None:
            import typer.main

            from ._cli_command import subcommand_from_argv

            return subcommand_from_argv(click_choices, typer.main.get_command(app), argv)

        run.command_resolver = resolve

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrap_main(lambda *a, **k: base.__call__(self, *a, **k), options, resolver_for)(*args, **kwargs)

    # __call__ is looked up on the type, so a per-instance subclass is the only non-global way.
    app.__class__ = type(base.__name__, (base,), {"__call__": call})
    return app
