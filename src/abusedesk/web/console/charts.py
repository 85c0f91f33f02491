"""The dashboard's charts as server-rendered SVG: no chart library, no script; every text escaped.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that state its figures, so a screen reader
reads what the picture shows; the page puts the same numbers in a table beside it. Colours are from one palette
whose entries keep 3:1 contrast against white (WCAG 1.4.11 for graphics).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

#: colour per series, in order (dark enough for 3:1 against white)
PALETTE = ("#0b5cad", "#a4161a", "#1e6b34", "#7a4d00", "#5b2a86", "#00626f", "#8a3b12", "#3d4a5c")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def line_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], *, width: int = 640, height: int = 240
) -> Markup:
    """One line per series over ``labels`` (dates), with a y axis from 0 and a legend."""
    per_row = 5
    rows = -(-len(series) // per_row)
    left, right, top, bottom = 44, 12, 12, 30 + 16 * rows
    height += 16 * rows
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((v for vals in series.values() for v in vals), default=0))
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    totals = ", ".join(f"clause {k}: {_num(sum(v))}" for k, v in series.items()) or "no findings"
    span = f"{labels[0]} to {labels[-1]}" if labels else ""
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="t-{id(series)}">',
        f'<title id="t-{id(series)}">{escape(title)}</title>',
        f"<desc>{escape(f'{title}, {span}: {totals}')}</desc>",
    ]
    for k in range(5):
        v = peak * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#d0d6de"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{_num(v)}</text>')
    for i in sorted({0, n // 2, n - 1}) if labels else []:
        at = f'x="{x(i):.1f}" y="{top + plot_h + 16}"'
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"  # the ends stay inside the picture
        out.append(f'<text {at} text-anchor="{anchor}" font-size="11">{escape(labels[i])}</text>')
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        lx = left + (j % per_row) * 110
        ly = top + plot_h + 36 + 16 * (j // per_row)
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="11">{escape(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it went through escape(); the rest is numbers


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, unit: str = "", width: int = 640, bar_height: int = 22
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, the value written at the bar's end."""
    left, right = 150, 60
    height = max(1, len(bars)) * (bar_height + 6) + 8
    peak = _nice_max(max((v for _, v in bars), default=0))
    plot_w = width - left - right
    summary = ", ".join(f"{label}: {_num(v)}{unit}" for label, v in bars) or "nothing to show"
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="t-{id(bars)}">',
        f'<title id="t-{id(bars)}">{escape(title)}</title>',
        f"<desc>{escape(f'{title}: {summary}')}</desc>",
    ]
    for i, (label, value) in enumerate(bars):
        top = 4 + i * (bar_height + 6)
        w = plot_w * value / peak
        out.append(
            f'<text x="{left - 8}" y="{top + bar_height * 0.7:.1f}" text-anchor="end" font-size="12">'
            f"{escape(label[:24])}</text>"
        )
        out.append(f'<rect x="{left}" y="{top}" width="{w:.1f}" height="{bar_height}" fill="{PALETTE[0]}"/>')
        out.append(
            f'<text x="{left + w + 6:.1f}" y="{top + bar_height * 0.7:.1f}" font-size="12">'
            f"{escape(_num(value) + unit)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it went through escape(); the rest is numbers
