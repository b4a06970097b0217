"""The sub-command a CLI run executed (``db migrate``), read from argv and the framework's command tree.

Shared by the click, typer and argparse adapters; each passes how to list a node's sub-commands.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~5 ms at CLI start; mypy still honours this name
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    ChoicesOf = Callable[[Any], "dict[str, Any] | None"]

__all__ = ["subcommand_from_argv"]


def subcommand_from_argv(choices_of: ChoicesOf, root: Any, argv: Sequence[str]) -> str | None:
    """Walk argv down nested command groups; skips options and their values."""
    path: list[str] = []
    node = root
    tokens = list(argv)
    while True:
        choices = choices_of(node)
        if not choices:
            break
        for i, token in enumerate(tokens):
            if token in choices:
                path.append(token)
                node = choices[token]
                tokens = tokens[i + 1 :]
                break
        else:
            break
    return " ".join(path) or None
