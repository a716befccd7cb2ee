"""Small self-contained SVG charts for the HTML report: bars and histograms, no JavaScript,
no fonts or files from anywhere else."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ftdata.render.text import visible

WIDTH = 560
HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_BOTTOM = 52
MARGIN_TOP = 28
BAR = "#4c78a8"
LINE = "#e45756"


def _esc(text: object) -> str:
    # Labels come from data (roles, system prompts): no control character reaches the XML.
    return html.escape(visible(text), quote=True)


def _ticks(top: float, count: int = 4) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(top / count)) if top >= count else max(top / count, 1e-9)
    for multiple in (1, 2, 5, 10):
        if top / (step * multiple) <= count:
            step *= multiple
            break
    return [step * k for k in range(int(top // step) + 1)]


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, x_label: str = "", y_label: str = "records"
) -> str:
    """Vertical bars, one per label (labels are shortened to fit)."""
    top = max(values, default=0) or 1
    plot_w = WIDTH - MARGIN_LEFT - 12
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    n = max(len(values), 1)
    slot = plot_w / n
    parts = [_frame(title, x_label, y_label, top)]
    for k, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = MARGIN_LEFT + k * slot + slot * 0.1
        y = MARGIN_TOP + plot_h - h
        short = label if len(label) <= 14 else label[:13] + "…"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{_esc(label)}: {_esc(_fmt(value))}</title></rect>"
        )
        anchor_x = x + slot * 0.4
        parts.append(
            f'<text x="{anchor_x:.1f}" y="{MARGIN_TOP + plot_h + 14}" font-size="10" text-anchor="end" '
            f'transform="rotate(-30 {anchor_x:.1f} {MARGIN_TOP + plot_h + 14})">{_esc(short)}</text>'
        )
    return _svg(title, parts)


def histogram(
    title: str,
    values: Sequence[float],
    *,
    bins: int = 30,
    marker: float | None = None,
    marker_label: str = "",
    x_label: str = "",
    y_label: str = "records",
) -> str:
    """A histogram of ``values`` with an optional vertical marker line (``max_length``)."""
    if not values:
        return bar_chart(title, [], [], x_label=x_label, y_label=y_label)
    low = min(values)
    high = max(max(values), marker or 0)
    if all(float(v).is_integer() for v in values[:1000]) and high - low < bins:
        bins = int(high - low) + 1  # small integer ranges: one bar per value
        high = low + bins
    if high <= low:
        high = low + 1
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    top = max(counts) or 1
    plot_w = WIDTH - MARGIN_LEFT - 12
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / bins
    parts = [_frame(title, x_label, y_label, top)]
    for k, c in enumerate(counts):
        h = plot_h * c / top
        x = MARGIN_LEFT + k * slot
        y = MARGIN_TOP + plot_h - h
        lo, hi = low + k * width, low + (k + 1) * width
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - 1, 0.5):.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{_esc(_fmt(round(lo)))}-{_esc(_fmt(round(hi)))}: {c}</title></rect>"
        )
    for k in range(0, bins + 1, max(1, bins // 5)):
        x = MARGIN_LEFT + k * slot
        parts.append(
            f'<text x="{x:.1f}" y="{MARGIN_TOP + plot_h + 14}" font-size="10" text-anchor="middle">{_esc(_fmt(round(low + k * width)))}</text>'
        )
    if marker is not None:
        x = MARGIN_LEFT + plot_w * (marker - low) / (high - low)
        parts.append(
            f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" y2="{MARGIN_TOP + plot_h}" stroke="{LINE}" stroke-width="2" stroke-dasharray="5,3"/>'
        )
        parts.append(
            f'<text x="{x + 4:.1f}" y="{MARGIN_TOP + 12}" font-size="11" fill="{LINE}">{_esc(marker_label)}</text>'
        )
    return _svg(title, parts)


def _frame(title: str, x_label: str, y_label: str, top: float) -> str:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    parts = [f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="600">{_esc(title)}</text>']
    parts.append(
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{MARGIN_TOP + plot_h}" stroke="#888"/>'
    )
    parts.append(
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{WIDTH - 12}" y2="{MARGIN_TOP + plot_h}" stroke="#888"/>'
    )
    for t in _ticks(top):
        y = MARGIN_TOP + plot_h - plot_h * t / top
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{_esc(_fmt(t))}</text>'
        )
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - 12}" y2="{y:.1f}" stroke="#eee"/>')
    if x_label:
        parts.append(
            f'<text x="{(MARGIN_LEFT + WIDTH) / 2:.0f}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle">{_esc(x_label)}</text>'
        )
    parts.append(
        f'<text x="12" y="{MARGIN_TOP + plot_h / 2:.0f}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.0f})">{_esc(y_label)}</text>'
    )
    return "".join(parts)


def _svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{_esc(title)}" font-family="sans-serif">' + "".join(parts) + "</svg>"
    )
