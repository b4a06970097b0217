"""Adapter for a plain ``main`` function: the run spans the call, its exception or return code ends it.

The click and typer adapters wrap their entry points with the same :func:`wrap_main`.
"""

from __future__ import annotations

import functools

from . import _cli_run

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._cli_run import CliRun

__all__ = ["instrument_main", "wrap_main"]


def instrument_main(main: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    """``main`` wrapped: one run per outermost call, the command unnamed (a plain main has none)."""
    return wrap_main(main, options, None)


def wrap_main(
    main: Callable[..., Any], options: dict[str, Any], resolver_for: Callable[[CliRun], None] | None
) -> Callable[..., Any]:
    """``main`` wrapped so that the outermost call starts the run and finishes it with the call's outcome.

    ``resolver_for(run)`` lets a framework adapter tell the run how to name its sub-command.
    A nested call (the run already started) runs ``main`` unchanged.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = _cli_run.current_run() is None
        run = _cli_run.init_cli(**options) if outer else None
        if run is None:
            return main(*args, **kwargs)
        if resolver_for is not None:
            resolver_for(run)
        try:
            result = main(*args, **kwargs)
        except BaseException as exc:
            try:
                run.record_exception(exc)
            except Exception as inner:
                from ._exceptions import debug

                debug("otel-autoheal: recording failed: %r", inner)
            run.finish(run.exit_code)
            raise
        run.finish(result if isinstance(result, int) and not isinstance(result, bool) else 0)
        return result

    return wrapper
