"""Server-side SVG charts (pure): a line over time and a two-sided histogram. The pages need
no charting library and render the same with JavaScript off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    points: str  # SVG polyline points
    lo: float
    hi: float
    last: float | None
    width: int
    height: int


def line(values: list[float], width: int = 320, height: int = 80) -> Line:
    """`values` scaled into a width x height box (top = highest)."""
    if not values:
        return Line("", 0.0, 0.0, None, width, height)
    lo, hi = min(values), max(values)
    span = hi - lo or abs(hi) or 1.0
    step = width / max(1, len(values) - 1)
    pad = 4
    pts = " ".join(
        f"{i * step:.1f},{pad + (height - 2 * pad) * (1 - (v - lo) / span):.1f}" for i, v in enumerate(values)
    )
    return Line(pts, lo, hi, values[-1], width, height)


@dataclass(frozen=True)
class Bar:
    x: float
    w: float
    long_h: float
    short_h: float
    label: str


def histogram(bins: list[dict[str, float]], width: int = 800, height: int = 220) -> list[Bar]:
    """One bar per bin: longs' and shorts' notional stacked, scaled to the tallest bin."""
    if not bins:
        return []
    top = max((b["longs"] + b["shorts"] for b in bins), default=0.0) or 1.0
    w = width / len(bins)
    return [
        Bar(
            i * w,
            max(1.0, w - 1),
            height * b["longs"] / top,
            height * b["shorts"] / top,
            f"{b['lo']:,.0f}–{b['hi']:,.0f}: longs ${b['longs']:,.0f}, shorts ${b['shorts']:,.0f}",
        )
        for i, b in enumerate(bins)
    ]


def x_of(value: float, lo: float, hi: float, width: int = 800) -> float:
    return 0.0 if hi <= lo else width * (value - lo) / (hi - lo)
