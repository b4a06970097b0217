"""Turn errors in CLIs and MCP server tools into OpenTelemetry data for otel-autoheal.

Importing this package is cheap: the OpenTelemetry SDK and exporters load only when an error
must be sent (CLI) or when an MCP server is instrumented, and ``__version__`` (read from the
installed distribution's metadata) only when asked for.
"""

from __future__ import annotations

from ._cli import instrument_cli
from ._cli_run import CliRun, current_run, init_cli

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._mcp import instrument_mcp, setup_otel, shutdown
    from ._scrub import scrub_argv, scrub_text, scrub_value

    __version__: str

__all__ = [
    "CliRun",
    "current_run",
    "init_cli",
    "instrument_cli",
    "instrument_mcp",
    "scrub_argv",
    "scrub_text",
    "scrub_value",
    "setup_otel",
    "shutdown",
]


def __getattr__(name: str) -> object:
    # The MCP side imports the OTel SDK; keep it out of CLI start-up.
    if name in ("instrument_mcp", "setup_otel", "shutdown"):
        from . import _mcp

        return getattr(_mcp, name)
    if name in ("scrub_argv", "scrub_text", "scrub_value"):
        from . import _scrub

        return getattr(_scrub, name)
    if name == "__version__":
        from ._version import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
