"""Bar charts as server-rendered SVG, built here as one string (a template loop over a few
hundred bars costs more than the rest of the report page).

No script, no external asset, no inline style (the CSP allows none): bars are rects with a
class the stylesheet colours, each with a <title> that says its exact figure.
"""

from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 900, 180
LEFT, RIGHT, BOTTOM, TOP = 40, 60, 22, 8  # room for the axis labels


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Chart:
    title: str
    bars: list[Bar]
    y_labels: list[tuple[float, int]]  # (y, value)
    x_labels: list[tuple[float, str]]  # (x, text)
    legend: list[tuple[str, str]]  # (css class, text)
    total: int
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def svg(self) -> SafeString:
        """The markup, joined as plain strings: every value is a number or our own label
        (a date, a count), and the text is escaped: format_html_join's per-argument
        escaping cost more than the rest of the chart."""
        parts = [
            f'<svg viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-label="{escape(self.title)}: {self.total} in all" preserveAspectRatio="none">'
        ]
        for y, value in self.y_labels:
            parts.append(
                f'<line x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y}" y2="{y}" class="grid"/>'
                f'<text x="{LEFT - 6}" y="{y}" class="axis" text-anchor="end" '
                f'dominant-baseline="middle">{value}</text>'
            )
        parts.extend(
            f'<rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" '
            f'class="{b.css}"><title>{escape(b.title)}</title></rect>'
            for b in self.bars
        )
        parts.extend(
            f'<text x="{x}" y="{self.height - 6}" class="axis">{escape(text)}</text>'
            for x, text in self.x_labels
        )
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least the largest value."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def bars(
    *,
    title: str,
    labels: list[str],
    series: list[tuple[str, str, list[int]]],
    label_every: int,
) -> Chart:
    """Stacked bars: `series` is (css class, name, values) from the bottom up; `label_every`
    thins the x-axis labels; each bar's title reads "<label>: 12 <name>, 3 <name>"."""
    n = len(labels)
    stacks = [sum(values[i] for _, _, values in series) for i in range(n)]
    top = _nice_max(max(stacks, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(n, 1)
    gap = min(2.0, slot * 0.2)
    chart_bars = []
    for i, label in enumerate(labels):
        base = HEIGHT - BOTTOM
        parts = ", ".join(f"{values[i]} {name}" for _, name, values in series)
        for css, _, values in series:
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            base -= h
            chart_bars.append(
                Bar(
                    x=round(LEFT + i * slot + gap / 2, 2),
                    y=round(base, 2),
                    width=round(slot - gap, 2),
                    height=round(h, 2),
                    css=css,
                    title=f"{label}: {parts}",
                )
            )
    y_labels = [(round(HEIGHT - BOTTOM - plot_h * f, 2), round(top * f)) for f in (0, 0.5, 1)]
    x_labels = [(round(LEFT + i * slot, 2), labels[i]) for i in range(0, n, max(1, label_every))]
    return Chart(
        title=title,
        bars=chart_bars,
        y_labels=y_labels,
        x_labels=x_labels,
        legend=[(css, name) for css, name, _ in series],
        total=sum(stacks),
    )


def expiry_chart(per_day: list[tuple[str, int]]) -> Chart:
    return bars(
        title="Refresh tokens ending per day, next 90 days",
        labels=[day for day, _ in per_day],
        series=[("bar-expiry", "refresh tokens end", [n for _, n in per_day])],
        label_every=14,
    )


def activity_chart(per_hour: list[tuple[str, int, int]]) -> Chart:
    return bars(
        title="Refreshes and failures per hour, last 7 days",
        labels=[hour for hour, _, _ in per_hour],
        series=[
            ("bar-ok", "refreshes", [ok for _, ok, _ in per_hour]),
            ("bar-bad", "failures", [bad for _, _, bad in per_hour]),
        ],
        label_every=24,
    )
