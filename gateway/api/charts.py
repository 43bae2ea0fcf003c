"""Charts for the pages, rendered on the server as inline SVG: nothing to download, nothing from a CDN.

Axes are fitted to the data (scores bunched between 85 and 95 are not drawn against 0–100 bars), ticks are
labelled, and every mark has a <title> a screen reader and a mouse can read.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence


def _range(values: Sequence[float], floor: float, ceil: float, pad: float) -> tuple[float, float, float]:
    """An axis range around `values` (clamped to [floor, ceil]) and a round tick step."""
    lo, hi = min(values), max(values)
    lo, hi = max(floor, lo - pad), min(ceil, hi + pad)
    if hi - lo < pad:
        lo, hi = max(floor, lo - pad), min(ceil, hi + pad)
    span = hi - lo or 1.0
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25, 50) if span / s <= 8)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step
    return max(floor, lo), min(ceil, hi), step


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    count = int(round((hi - lo) / step))
    return [lo + i * step for i in range(count + 1)]


def dot_plot(points: Sequence[tuple[str, float | None]], label: str, value_format: str = "{:.1f}",
             element_id: str = "scores") -> str:
    """One row per (name, value), a dot at the value on an axis fitted to the values; null values are
    listed as "无得分" at the end of their row."""
    known = [v for _, v in points if v is not None]
    if not known:
        return f"<p class=muted id={element_id}-empty>{html.escape(label)}：所有单位均无可计算的数值。</p>"
    lo, hi, step = _range(known, 0.0, 100.0, 2.0)
    left, width, row_h, top = 230, 560, 22, 24
    height = top + row_h * len(points) + 10
    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo or 1) * width
    parts = [f"<text x={left} y=14>{html.escape(label)}（坐标轴从 {value_format.format(lo)} 起）</text>"]
    for t in _ticks(lo, hi, step):
        parts.append(f"<line class=grid x1={x(t):.1f} x2={x(t):.1f} y1={top - 4} y2={height - 14} />"
                     f"<text x={x(t):.1f} y={height - 2} text-anchor=middle>{value_format.format(t)}</text>")
    for i, (name, value) in enumerate(points):
        y = top + i * row_h + row_h / 2
        safe = html.escape(name)
        parts.append(f"<text x={left - 8} y={y + 4:.1f} text-anchor=end>{safe}</text>")
        parts.append(f"<line class=grid x1={left} x2={left + width} y1={y:.1f} y2={y:.1f} />")
        if value is None:
            parts.append(f"<text x={left + 4} y={y + 4:.1f} class=muted>无得分</text>")
        else:
            shown = value_format.format(value)
            parts.append(f"<circle class=dot cx={x(value):.1f} cy={y:.1f} r=5><title>{safe}: {shown}</title></circle>"
                         f"<text x={x(value) + 8:.1f} y={y + 4:.1f}>{shown}</text>")
    return (f"<svg id={element_id} role=img aria-label='{html.escape(label)}' width={left + width + 60} "
            f"height={height} xmlns='http://www.w3.org/2000/svg'>{''.join(parts)}</svg>")


def line_chart(points: Sequence[tuple[str, float | None]], label: str, element_id: str = "monthly") -> str:
    """A line through (x label, rate in [0, 1]) points, the y axis fitted to the rates (not from 0); a month
    with no rate breaks the line and is marked "无"."""
    known = [v for _, v in points if v is not None]
    if not known:
        return f"<p class=muted id={element_id}-empty>{html.escape(label)}：各月均无可计算的按时率。</p>"
    lo, hi, step = _range(known, 0.0, 1.0, 0.02)
    left, width, top, plot_h = 60, max(240, 60 * len(points)), 24, 200
    height = top + plot_h + 40
    def x(i: int) -> float:
        return left + (i + 0.5) * width / len(points)
    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo or 1) * plot_h
    parts = [f"<text x={left} y=14>{html.escape(label)}（纵轴从 {lo:.0%} 起）</text>"]
    for t in _ticks(lo, hi, step):
        parts.append(f"<line class=grid x1={left} x2={left + width} y1={y(t):.1f} y2={y(t):.1f} />"
                     f"<text x={left - 6} y={y(t) + 4:.1f} text-anchor=end>{t:.0%}</text>")
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, (name, value) in enumerate(points):
        parts.append(f"<text x={x(i):.1f} y={top + plot_h + 18} text-anchor=middle>{html.escape(name)}</text>")
        if value is None:
            parts.append(f"<text x={x(i):.1f} y={top + plot_h - 4} text-anchor=middle class=muted>无</text>")
            segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(value):.1f}")
        parts.append(f"<circle class=dot cx={x(i):.1f} cy={y(value):.1f} r=4>"
                     f"<title>{html.escape(name)}: {value:.1%}</title></circle>"
                     f"<text x={x(i):.1f} y={y(value) - 8:.1f} text-anchor=middle>{value:.1%}</text>")
    segments.append(segment)
    lines = "".join(f"<polyline class=line points='{' '.join(s)}' />" for s in segments if len(s) > 1)
    return (f"<svg id={element_id} role=img aria-label='{html.escape(label)}' width={left + width + 20} "
            f"height={height} xmlns='http://www.w3.org/2000/svg'>{lines}{''.join(parts)}</svg>")


def change_bars(points: Sequence[tuple[str, int, int, float | None]], label: str, element_id: str = "rising") -> str:
    """Horizontal bars of (name, count, previous count, change rate): the bar is the change (count − previous),
    from a zero line, labelled with the counts and the rate ("新增" when there was nothing before)."""
    if not points:
        return f"<p class=muted id={element_id}-empty>{html.escape(label)}：没有数量上升的类别。</p>"
    changes = [count - previous for _, count, previous, _ in points]
    most = max(abs(c) for c in changes) or 1
    left, width, row_h, top = 130, 360, 26, 24
    zero = left + (width / 2 if min(changes) < 0 else 0)
    scale = (width / 2 if min(changes) < 0 else width) / most
    parts = [f"<text x=0 y=14>{html.escape(label)}</text>",
             f"<line class=axis x1={zero:.1f} x2={zero:.1f} y1={top - 4} y2={top + row_h * len(points)} />"]
    for i, ((name, count, previous, rate), change) in enumerate(zip(points, changes, strict=True)):
        y = top + i * row_h
        x, w = (zero, change * scale) if change >= 0 else (zero + change * scale, -change * scale)
        rate_text = "新增" if rate is None else f"{rate:+.0%}"
        text = f"{count}（上期 {previous}，{'+' if change >= 0 else ''}{change}，{rate_text}）"
        parts.append(f"<text x={left - 8} y={y + 15} text-anchor=end>{html.escape(name)}</text>"
                     f"<rect class=bar x={x:.1f} y={y + 3} width={max(w, 1):.1f} height=16>"
                     f"<title>{html.escape(name)}: {html.escape(text)}</title></rect>"
                     f"<text x={zero + max(change, 0) * scale + 6:.1f} y={y + 15}>{html.escape(text)}</text>")
    return (f"<svg id={element_id} role=img aria-label='{html.escape(label)}' width={left + width + 260} "
            f"height={top + row_h * len(points) + 8} xmlns='http://www.w3.org/2000/svg'>{''.join(parts)}</svg>")
