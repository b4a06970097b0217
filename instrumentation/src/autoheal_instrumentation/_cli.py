"""``instrument_cli``: picks the adapter for what it is given (typer, click, argparse, a plain main).

One module per framework (``_cli_typer``, ``_cli_click``, ``_cli_argparse``, ``_cli_plain``),
imported only when its kind of target is instrumented; the run itself lives in ``_cli_run``.
A framework is recognised only if the host imported it already, so none is ever imported here.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from typing import Any

__all__ = ["instrument_cli"]


def instrument_cli(target: Any = None, /, **options: Any) -> Any:
    """Instrument a CLI entry point; returns it (or a decorator when called with options only).

    ``target`` may be a plain ``main`` function, a click command/group, a typer app or an
    argparse parser. Options are those of :func:`init_cli`.
    """
    if target is None:
        return lambda t: instrument_cli(t, **options)
    try:
        return _instrument(target, options)
    except Exception as exc:
        from ._exceptions import debug

        debug("otel-autoheal: cannot instrument %r: %r", target, exc)
    return target


def _instrument(target: Any, options: dict[str, Any]) -> Any:
    typer = sys.modules.get("typer")
    if typer is not None and isinstance(target, typer.Typer):
        from ._cli_typer import instrument_typer

        return instrument_typer(target, options)
    click = sys.modules.get("click")
    if click is not None and isinstance(target, click.Command):
        from ._cli_click import instrument_click

        return instrument_click(target, options)
    # Recognised by shape: argparse itself is not imported unless the host did.
    if type(target).__name__ == "ArgumentParser" or hasattr(target, "parse_known_args"):
        from ._cli_argparse import instrument_argparse

        return instrument_argparse(target, options)
    if callable(target):
        from ._cli_plain import instrument_main

        return instrument_main(target, options)
    return target
