"""Geometry of the sparklines and the occurrence chart, drawn as inline SVG by the templates.

Only numbers are computed here; the templates write the SVG elements with autoescaping, so a
version string from telemetry in a marker's label is text, never markup. No chart library and
no script: the charts are there without JavaScript, and the page's CSP forbids inline styles,
so colours come from CSS classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["Chart", "chart", "sparkline"]


@dataclass
class Chart:
    width: int
    height: int
    #: (x, y, width, height, tooltip)
    bars: list[tuple[float, float, float, float, str]]
    total: int
    peak: int
    #: (x, label) of each version's first appearance
    markers: list[tuple[float, str]] = field(default_factory=list)
    #: (x, label) along the time axis
    ticks: list[tuple[float, str]] = field(default_factory=list)
    #: All bars as one SVG path (sparklines: one element per row instead of one per bar)
    path: str = ""


def _label(start: float, size: int) -> str:
    moment = datetime.fromtimestamp(start, tz=UTC)
    return moment.strftime("%H:00 UTC %d %b" if size < 86400 else "%d %b %Y")


def _bars(counts: list[int], starts: list[float], size: int, width: float, height: float,
          top: float = 0.0) -> tuple[list[tuple[float, float, float, float, str]], int]:
    peak = max(counts, default=0)
    step = width / max(len(counts), 1)
    bars = []
    for i, (n, start) in enumerate(zip(counts, starts, strict=False)):
        h = 0.0 if peak == 0 else max(1.5, (height - top) * n / peak) if n else 0.0
        bars.append((round(i * step + 0.5, 2), round(height - h, 2), round(max(step - 1, 1), 2), round(h, 2),
                     f"{n} × {_label(start, size)}"))
    return bars, peak


def sparkline(counts: list[int], width: int = 96, height: int = 22) -> Chart:
    """Bars for ``counts`` (oldest first) as one path: the list draws 50 of these per page."""
    peak = max(counts, default=0)
    step = width / max(len(counts), 1)
    parts = []
    for i, n in enumerate(counts):
        if n:
            h = max(1.5, height * n / peak)
            parts.append(f"M{i * step + 0.5:.1f} {height - h:.1f}h{max(step - 1, 1):.1f}V{height}H{i * step + 0.5:.1f}Z")
    return Chart(width, height, [], sum(counts), peak, path="".join(parts))


def chart(points: list[tuple[float, int]], size: int, versions: list[tuple[str, float]],
          width: int = 720, height: int = 160) -> Chart:
    """The group page's chart: bars per bucket, a marker where each version was first seen."""
    axis = 18  # room for tick labels under the bars
    starts = [p[0] for p in points]
    bars, peak = _bars([p[1] for p in points], starts, size, width, height - axis, top=14)
    result = Chart(width, height, bars, sum(p[1] for p in points), peak)
    if not points:
        return result
    begin, end = starts[0], starts[-1] + size
    span = end - begin
    for version, first_seen in versions:
        if begin <= first_seen < end:
            result.markers.append((round((first_seen - begin) / span * width, 2), version[:40]))
    for index in (0, len(points) // 2, len(points) - 1):
        result.ticks.append((round(index * width / len(points), 2), _label(starts[index], size)))
    return result
