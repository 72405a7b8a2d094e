"""Charts as SVG, drawn on the server (no script, no charting library): one bar per week for
a user, and the site median as a line across them. Colours and sizes are presentation
attributes, not styles, so the pages' Content-Security-Policy needs no inline style."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 34
BAR, MEDIAN, AXIS, TEXT = "#3b6ea5", "#d9822b", "#888888", "#333333"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1) if value >= 1 else 0.1
    top = step
    while top < value:
        top += step
    return float(top)


def bars_with_median(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    median: Sequence[float],
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    top: float | None = None,
) -> str:
    """An accessible SVG: bars of ``values`` (one per label), a line through ``median``."""
    n = max(1, len(labels))
    high = top if top is not None else _nice_max(max([*values, *median, 0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.6)

    def y(v: float) -> float:
        return TOP + plot_h - (min(v, high) / high) * plot_h if high else TOP + plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0, 0.5, 1):
        v = high * frac
        yy = y(v)
        out.append(
            f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" y2="{yy:.1f}" stroke="{AXIS}" '
            f'stroke-width="0.5"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" font-size="10" text-anchor="end" fill="{TEXT}">'
            f"{escape(fmt(v))}</text>"
        )
    for i, (label, v) in enumerate(zip(labels, values)):
        x = LEFT + i * slot + (slot - bar_w) / 2
        out.append(
            f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" height="{TOP + plot_h - y(v):.1f}" '
            f'fill="{BAR}"><title>{escape(label)}: {escape(fmt(v))}</title></rect>'
        )
        if n <= 16 or i % 2 == 0:
            out.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="9" '
                f'text-anchor="middle" fill="{TEXT}">{escape(label[5:])}</text>'
            )
    if median:
        points = " ".join(f"{LEFT + i * slot + slot / 2:.1f},{y(m):.1f}" for i, m in enumerate(median))
        out.append(f'<polyline points="{points}" fill="none" stroke="{MEDIAN}" stroke-width="2"/>')
        for i, m in enumerate(median):
            out.append(
                f'<circle cx="{LEFT + i * slot + slot / 2:.1f}" cy="{y(m):.1f}" r="2.5" fill="{MEDIAN}">'
                f"<title>site median {escape(labels[i])}: {escape(fmt(m))}</title></circle>"
            )
    out.append(
        f'<rect x="{LEFT}" y="{HEIGHT - 14}" width="10" height="8" fill="{BAR}"/>'
        f'<text x="{LEFT + 14}" y="{HEIGHT - 6}" font-size="10" fill="{TEXT}">this user</text>'
        f'<line x1="{LEFT + 90}" y1="{HEIGHT - 10}" x2="{LEFT + 104}" y2="{HEIGHT - 10}" stroke="{MEDIAN}" '
        f'stroke-width="2"/><text x="{LEFT + 108}" y="{HEIGHT - 6}" font-size="10" fill="{TEXT}">'
        "site median</text>"
    )
    out.append("</svg>")
    return "".join(out)


def percent(v: float) -> str:
    return f"{v * 100:.0f}%"


def size(v: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(v) < 1000 or unit == "GB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} GB"
