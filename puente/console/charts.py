"""Horizontal bar charts as inline SVG, made on the server: no JavaScript, nothing fetched.

Only presentation attributes are used (no ``style``), so the console's Content-Security-Policy
(``style-src 'self'``) holds; every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 230
BAR_WIDTH = 290
VALUE_WIDTH = 70
MAX_BARS = 40


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "", *,
              series: Sequence[str] = (), keep_last: bool = False) -> Markup:
    """An SVG chart of ``bars`` (label, value), largest scale first bar to last; ``unit`` ``ms`` shows
    times. With ``series`` (one name per bar, repeating), bars are coloured by series and a legend shown.
    At most ``MAX_BARS`` are drawn: the first ones, or with ``keep_last`` the last (the newest of bars in time
    order), and the chart then says how many it leaves out, which the CSV holds."""
    every = list(bars)
    left_out = max(0, len(every) - MAX_BARS)
    first = left_out if keep_last else 0
    shown = every[first:first + MAX_BARS]
    if not shown:
        return Markup('<p class="empty">Nothing to chart for this period.</p>')
    top = max((v for _, v in shown), default=0) or 1
    legend = list(dict.fromkeys(series))
    legend_h = (BAR_HEIGHT if legend else 0)
    note_h = BAR_HEIGHT if left_out else 0
    height = legend_h + len(shown) * (BAR_HEIGHT + GAP) + GAP + note_h
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, name in enumerate(legend):
        x = LABEL_WIDTH + i * 130
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" class="s{i % 6}"/>'
                     f'<text x="{x + 16}" y="15" class="legend">{escape(name)}</text>')
    for i, (label, value) in enumerate(shown):
        y = legend_h + GAP + i * (BAR_HEIGHT + GAP)
        w = max(1.0, BAR_WIDTH * value / top) if value > 0 else 0
        klass = f"s{legend.index(series[first + i]) % 6}" if legend and first + i < len(series) else "s0"
        text = str(label) if len(str(label)) <= 28 else str(label)[:27] + "…"
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" class="label">{escape(text)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w:.1f}" height="{BAR_HEIGHT}" rx="3" class="{klass}">'
            f'<title>{escape(label)}: {escape(_fmt(value, unit))}</title></rect>'
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + 15}" class="value">{escape(_fmt(value, unit))}</text>')
    if left_out:
        which = "the oldest" if keep_last else "the last listed"
        parts.append(f'<text x="{LABEL_WIDTH}" y="{height - 8}" class="value note">{left_out:,} not shown ({which}); '
                     'see the CSV</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value above is escaped
