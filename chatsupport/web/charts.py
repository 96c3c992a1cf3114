"""Charts drawn on the server as SVG: no JavaScript, no CDN, nothing for the strict CSP to block.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` for screen readers, labelled axes and
gridlines; colours come from classes in dashboard.css (presentation attributes only, no inline styles). Every
piece of text is escaped here, so the returned ``Markup`` is safe to drop into a template.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 40
_ids = itertools.count(1)


def _nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _frame(title: str, desc: str, body: list[str], height: int = HEIGHT) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart{n}-t chart{n}-d"'
        f' xmlns="http://www.w3.org/2000/svg"><title id="chart{n}-t">{escape(title)}</title>'
        f'<desc id="chart{n}-d">{escape(desc)}</desc>{"".join(body)}</svg>')


def _y_axis(top: float, percent: bool, plot_h: float) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(_number(value, percent))}</text>')
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: float) -> list[str]:
    """At most about twelve labels, evenly thinned, so they never overlap."""
    step = max(1, -(-len(labels) // 12))
    return [f'<text class="tick" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, xs)) if i % step == 0]


def line_chart(title: str, desc: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
               percent: bool = False) -> Markup:
    """One line per series over the same x labels; ``None`` values leave a gap. A legend names each series."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for _, vs in series for v in vs if v is not None]
    top = 1.0 if percent else _nice_max(max(values, default=0))
    count = max(len(labels), 1)
    xs = [LEFT + (plot_w * (i + 0.5) / count) for i in range(count)]
    body = _y_axis(top, percent, plot_h)
    for index, (name, points) in enumerate(series):
        segments, current = [], []
        for x, value in zip(xs, points):
            if value is None:
                segments, current = segments + ([current] if current else []), []
                continue
            current.append(f"{x:.1f},{TOP + plot_h - plot_h * value / top:.1f}")
        segments += [current] if current else []
        for segment in segments:
            body.append(f'<polyline class="line s{index}" fill="none" points="{" ".join(segment)}"/>')
            body.extend(f'<circle class="dot s{index}" cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5"/>'
                        for p in segment)
        body.append(f'<rect class="key s{index}" x="{LEFT + 8 + index * 130}" y="{HEIGHT - 14}" width="10"'
                    f' height="10"/><text class="legend" x="{LEFT + 22 + index * 130}" y="{HEIGHT - 5}">'
                    f'{escape(name)}</text>')
    body += _x_labels(labels, xs, TOP + plot_h + 16)
    return _frame(title, desc, body)


def bar_chart(title: str, desc: str, labels: Sequence[str], values: Sequence[float], percent: bool = False) -> Markup:
    """Vertical bars (hours of the day, CSAT scores), the value above each non-empty bar when there is room."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = 1.0 if percent else _nice_max(max(values, default=0))
    count = max(len(labels), 1)
    slot = plot_w / count
    xs = [LEFT + slot * (i + 0.5) for i in range(count)]
    body = _y_axis(top, percent, plot_h)
    for x, value in zip(xs, values):
        h = plot_h * value / top
        body.append(f'<rect class="bar" x="{x - slot * 0.35:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}"'
                    f' height="{h:.1f}"/>')
        if value and count <= 12:
            body.append(f'<text class="value" x="{x:.1f}" y="{TOP + plot_h - h - 4:.1f}" text-anchor="middle">'
                        f'{escape(_number(value, percent))}</text>')
    body += _x_labels(labels, xs, TOP + plot_h + 16)
    return _frame(title, desc, body)


def hbar_chart(title: str, desc: str, labels: Sequence[str], values: Sequence[float]) -> Markup:
    """Horizontal bars for named categories (intents, escalation reasons): long names stay readable."""
    row, label_w = 26, 200
    height = TOP + row * max(len(labels), 1) + 8
    top = max(values, default=0) or 1
    plot_w = WIDTH - label_w - RIGHT - 40
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = TOP + i * row
        short = label if len(label) <= 30 else label[:29] + "…"
        w = plot_w * value / top
        body.append(f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(short)}</text>'
                    f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}"/>'
                    f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 16}">'
                    f'{escape(_number(value, False))}</text>')
    return _frame(title, desc, body, height)
