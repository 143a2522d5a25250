"""The page shell every site page shares, and the history chart (inline SVG: no library, no request).

Pages link each other by relative paths and load at most two local assets (`assets/site.css`,
`assets/site.js`) plus `assets/plotly-basic.min.js` (plotly.js's basic bundle, vendored: scatter, bar and
pie, all the shared views draw, in 1.2 MB instead of 4.8) where a page holds a shared report view's plot, so
the site opens from disk or any static host and asks nothing of the network.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from effbench.reports.common import Figure, Section, fmt_ms, h, script_json
from effbench.reports.html import page_head, section_html
from effbench.site.changes import Change
from effbench.site.history import CellHistory, Point

PLOTLY = "plotly-basic.min.js"


@dataclass
class Page:
    """One HTML file of the site: `path` is relative to the site root (e.g. devices/cpu.html)."""

    path: str
    title: str
    body: str
    sections: list[Section] = field(default_factory=list)  # shared report views placed after the body
    data: dict[str, Any] | None = None  # JSON the page's script reads (filters, A|B)
    kind: str = "page"

    @property
    def root(self) -> str:
        return "../" * self.path.count("/")

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def slug(value: str) -> str:
    """A file name for a model or device name: safe characters kept; any other makes a hash suffix (unique)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", value).lstrip(".") or "_"
    if name != value:
        name += "-" + hashlib.sha1(value.encode()).hexdigest()[:8]
    return name


def cell_path(key: str) -> str:
    return f"cells/{key}.html"


def nav(root: str) -> str:
    links = [
        ("index.html", "Overview"),
        ("regressions.html", "Regressions"),
        ("regressions.xml", "Atom feed"),
        ("data/index.json", "Data"),
    ]
    return "".join(f'<a href="{root}{href}">{h(text)}</a>' for href, text in links)


def render(page: Page, generated: str) -> str:
    root = page.root
    figures = {f.div_id: f.to_json() for f in page.figures}
    sections = "".join(section_html(s) for s in page.sections)
    plotly = f'\n<script src="{root}assets/{PLOTLY}"></script>' if figures else ""
    head = (
        f'<link rel="stylesheet" href="{root}assets/report.css">\n'
        f'<link rel="stylesheet" href="{root}assets/site.css">\n'
        '<link rel="alternate" type="application/atom+xml" title="effbench regressions" '
        f'href="{root}regressions.xml">{plotly}'
    )
    return f"""{page_head(f"{page.title} · effbench", head)}
<body data-kind="{h(page.kind)}">
<header class="top"><div class="inner"><h1><span class="brand">effbench</span> {h(page.title)}</h1>
<nav class="site">{nav(root)}</nav><p class="meta">Generated {h(generated)} from the results store. Every filter
is in the address: copy it to share exactly this view.</p></div></header>
<main>
{page.body}
{sections}
</main>
<script type="application/json" id="site-data">{script_json(page.data or {})}</script>
<script type="application/json" id="effbench-figures">{script_json(figures)}</script>
<script src="{root}assets/site.js"></script>
</body>
</html>
"""


def provenance(point: Point) -> str:
    """Where a measured number comes from: its run (id, date, commit, tag)."""
    parts = [f"measured · run {point.id[:8]}", point.created_at[:16].replace("T", " ")]
    if point.commit:
        parts.append(f"commit {point.commit[:10]}")
    if point.tag:
        parts.append(f"tag {point.tag}")
    return " · ".join(parts)


def median_ci(point: Point | None) -> str:
    if point is None or point.median is None:
        return "–"
    ci = f" [{fmt_ms(point.ci_low)}–{fmt_ms(point.ci_high)}]" if point.ci_low is not None else ""
    return f"{fmt_ms(point.median)} ms{ci}"


def change_text(change: Change) -> str:
    pct = (change.ratio - 1) * 100
    return (
        f"{'+' if pct >= 0 else ''}{pct:.1f}% (ratio {change.ratio:.3f}, 95% CI "
        f"{change.ci_low:.3f}–{change.ci_high:.3f}): {change.verdict}"
    )


def history_svg(cell: CellHistory, changes: list[Change], width: int = 900, height: int = 320) -> str:
    """Medians over time with their 95% CIs as a band, change points as vertical lines (red: slower,
    green: faster, grey: not confirmed). Every point is an element with its date, so the page's date
    range filter can hide it."""
    ok = cell.ok_points
    if not ok:
        return '<p class="note warn">No ok run in this history: nothing to draw.</p>'
    lows = [p.ci_low if p.ci_low is not None else p.median for p in ok]
    highs = [p.ci_high if p.ci_high is not None else p.median for p in ok]
    lo = min(v for v in lows if v is not None)
    hi = max(v for v in highs if v is not None)
    if hi <= lo:
        hi, lo = hi * 1.05 + 1e-9, lo * 0.95
    pad_l, pad_r, pad_t, pad_b = 64, 16, 14, 36
    w, hgt = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(ok)
    xs = [pad_l + (w * i / (n - 1) if n > 1 else w / 2) for i in range(n)]
    y = lambda v: pad_t + hgt * (1 - (v - lo) / (hi - lo))
    band_up = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, highs))
    band_down = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in reversed(list(zip(xs, lows))))
    line = " ".join(f"{x:.1f},{y(p.median):.1f}" for x, p in zip(xs, ok) if p.median is not None)
    ticks = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        ticks.append(
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
            f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{h(fmt_ms(v))}</text>'
        )
    marks = []
    for c in changes:
        x = (xs[c.index - 1] + xs[c.index]) / 2
        cls = ("slower" if c.ratio > 1 else "faster") if c.real else "unconfirmed"
        marks.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{pad_t + hgt}" class="change {cls}">'
            f"<title>{h(change_text(c))}</title></line>"
        )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y(p.median):.1f}" r="{3 if n < 200 else 1.5}" class="run" '
        f'data-t="{h(p.created_at)}" data-id="{h(p.id)}"><title>{h(median_ci(p))} · {h(provenance(p))}</title></circle>'
        for x, p in zip(xs, ok)
        if p.median is not None
    )
    first, last = ok[0].created_at[:10], ok[-1].created_at[:10]
    step = max(1, int(math.ceil(n / 8)))
    labels = "".join(
        f'<text x="{xs[i]:.1f}" y="{height - 8}" class="tick" text-anchor="middle">{h(ok[i].created_at[5:10])}</text>'
        for i in range(0, n, step)
    )
    return (
        f'<svg class="history" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="median latency over time, {h(first)} to {h(last)}">'
        f"{''.join(ticks)}"
        f'<polygon points="{band_up} {band_down}" class="band"><title>95% CI of each run\'s median</title></polygon>'
        f'<polyline points="{line}" class="median"/>{"".join(marks)}{dots}{labels}'
        f'<text x="14" y="{pad_t + hgt / 2:.0f}" class="axis" transform="rotate(-90 14 {pad_t + hgt / 2:.0f})" '
        'text-anchor="middle">median ms</text></svg>'
    )
