"""The self-contained HTML dashboard: one file, plotly.js embedded once, no network request when opened."""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping

from effbench.harness.result import Result
from effbench.reports.common import Section, h, script_json
from effbench.reports.data import Query, Row, to_rows
from effbench.reports.publish import ViewContext, publish_views, report_views, view_ids
from effbench.reports.views.matrix import reference_backend
from effbench.reports.views.results import date_text

# Every view's id, in page order: the page anchors tests and links rely on.
VIEW_IDS = view_ids()


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # The bundle is written inside <script>: make sure nothing in it can close the element early.
    return get_plotlyjs().replace("</script", "<\\/script")


def report_css() -> str:
    return resources.files("effbench.reports").joinpath("assets/report.css").read_text(encoding="utf-8")


def build_sections(rows: list[Row], reference: str | None = None) -> list[Section]:
    """Every report view (a publisher, shared with `bench site`) over these rows, in page order."""
    return publish_views(report_views(), ViewContext(rows, reference))


def _header(rows: list[Row], query: Query | None, generated: str) -> str:
    ok = sum(r.ok for r in rows)
    dates = sorted(r.created_at for r in rows if r.created_at)
    span = f"{date_text(dates[0])} – {date_text(dates[-1])} UTC" if dates else "no dates recorded"
    devices = sorted({r.device for r in rows})
    backends = sorted({r.backend for r in rows})
    models = sorted({r.model for r in rows})
    bad = len(rows) - ok
    chips = lambda xs: "".join(f"<span>{h(x)}</span>" for x in xs)
    filters = query.describe() if query else ""
    return (
        '<header class="top"><div class="inner">'
        '<h1><span class="brand">effbench</span> report</h1>'
        f'<p class="summary"><b>{len(rows)}</b> run(s): {ok} ok'
        + (f', <span class="status-bad">{bad} failed or skipped</span>' if bad else "")
        + f" · {len(models)} model(s) · {span}</p>"
        f'<p class="summary chips">devices: {chips(devices)} &nbsp; backends: {chips(backends)}</p>'
        f'<p class="meta">Generated {h(generated)} from the results store'
        + (f" · filters: <code>{h(filters)}</code>" if filters else "")
        + " · hover any point for its details; every view works offline.</p>"
        "</div></header>"
    )


def section_html(s: Section) -> str:
    """A view's section as the report and the site place it."""
    return (
        f'<section class="view" id="{h(s.id)}" aria-labelledby="{h(s.id)}-title">'
        f'<h2 id="{h(s.id)}-title">{h(s.title)}</h2><p class="how">{s.how}</p>{s.body}</section>'
    )


def page_head(title: str, extra: str) -> str:
    """The doctype and <head> every effbench page opens with; `extra` is trusted HTML (styles, scripts)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="effbench">
<title>{h(title)}</title>
<link rel="icon" href="data:,">
{extra}
</head>"""


def render_html(
    records: Iterable[Result | Mapping[str, Any]],
    query: Query | None = None,
    reference: str | None = None,
    title: str = "effbench report",
) -> str:
    rows = to_rows(records)
    reference_backend([r for r in rows if r.scenario != "profile"], reference)  # bad name: UsageError first
    sections = build_sections(rows, reference)
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#{h(s.id)}">{h(s.title)}</a></li>' for s in sections)
    figures = {f.div_id: f.to_json() for s in sections for f in s.figures}
    body = "".join(section_html(s) for s in sections)
    head = page_head(title, f"<style>{report_css()}</style>\n<script>{plotly_js()}</script>")
    return f"""{head}
<body>
{_header(rows, query, generated)}
<nav class="toc" aria-label="views"><div class="inner"><ol>{toc}</ol></div></nav>
<main>
{body}
</main>
<footer>effbench · latency is the median of the raw samples with its 95% confidence interval; top-1 is the
model card's reported value ("card") unless the record carries one measured on the timed session (with its Wilson
95% interval); plots are interactive (zoom, hover, click
the legend).</footer>
<script type="application/json" id="effbench-figures">{script_json(figures)}</script>
<script>
(function () {{
  var figs = JSON.parse(document.getElementById("effbench-figures").textContent);
  var config = {{displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"],
                toImageButtonOptions: {{format: "png", scale: 2}}}};
  var pending = Object.keys(figs).map(function (id) {{
    var el = document.getElementById(id);
    return el ? Plotly.newPlot(el, figs[id].data, figs[id].layout, config) : null;
  }});
  Promise.all(pending).then(function () {{
    document.body.setAttribute("data-plots-ready", String(pending.length));
  }});
}})();
</script>
</body>
</html>
"""
