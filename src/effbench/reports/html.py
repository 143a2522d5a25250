"""The self-contained HTML dashboard: one file, plotly.js embedded once, no network request when opened."""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from importlib import resources
from typing import Any

from effbench.reports.common import Section, fmt, fmt_ms, h, script_json
from effbench.reports.data import Query, Row, latest_per_cell, num, to_rows
from effbench.reports.views.claims import claims_section
from effbench.reports.views.environment import environment_section
from effbench.reports.views.gap import gap_section
from effbench.reports.views.matrix import matrix_section, reference_backend
from effbench.reports.views.placement import placement_section
from effbench.reports.views.precision import precision_section
from effbench.reports.views.prediction import prediction_section
from effbench.reports.views.roofline import roofline_section
from effbench.reports.views.speed import speed_section
from effbench.reports.views.stability import stability_section
from effbench.reports.views.timeshare import timeshare_section

# Every view, in page order: (id, builder). The ids are the page anchors tests and links rely on.
VIEW_IDS = [
    "speed-accuracy",
    "precision",
    "roofline",
    "efficiency-gap",
    "prediction",
    "where-time-goes",
    "backend-matrix",
    "placement",
    "claims",
    "stability",
    "environment",
    "results",
]


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # The bundle is written inside <script>: make sure nothing in it can close the element early.
    return get_plotlyjs().replace("</script", "<\\/script")


def _css() -> str:
    return resources.files("effbench.reports").joinpath("assets/report.css").read_text(encoding="utf-8")


def _date(ts: str) -> str:
    return ts[:16].replace("T", " ") if ts else "?"


RESULT_COLUMNS = [
    "model",
    "backend",
    "device",
    "batch",
    "precision",
    "scenario",
    "status",
    "median ms",
    "95% CI ms",
    "p99 ms",
    "img/s",
    "top-1 %",
    "efficiency %",
    "parity",
]


def results_section(rows: list[Row]) -> Section:
    cells, older = latest_per_cell([r for r in rows if r.scenario != "profile"])
    body = []
    for r in cells:
        ci = f"{fmt_ms(r.ci_low)}–{fmt_ms(r.ci_high)}" if r.ci_low is not None and r.ci_high is not None else "–"
        notes = ([r.error] if r.error else []) + r.warnings
        status = f'<span class="{"" if r.ok else "status-bad"}">{h(r.status)}</span>'
        prec = r.precision if r.precision_ran in ("", r.precision) else f"{r.precision} → {r.precision_ran}"
        mem = r.rec.get("memory") if isinstance(r.rec.get("memory"), dict) else {}
        cells_html = [
            (h(r.model), "name"),
            (h(r.backend), ""),
            (h(r.device), ""),
            (h(r.batch), "num"),
            (h(prec), ""),
            (h(r.scenario), ""),
            (status, ""),
            (fmt_ms(r.median), "num"),
            (ci, "num"),
            (fmt_ms(r.p99), "num"),
            (fmt(r.throughput, ".4g"), "num"),
            (h(r.top1_text), "num"),
            (fmt(r.efficiency * 100 if r.efficiency is not None else None, ".3g"), "num"),
            (h(r.parity_text), "nowrap"),
        ]
        body.append(
            '<tr class="has-notes">'
            + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for v, c in cells_html)
            + "</tr>"
        )
        rss = num(mem.get("peak_rss_mb"))
        meta = (
            f"run {_date(r.created_at)} UTC"
            + (f" · peak RSS {rss:.4g} MB" if rss is not None else "")
            + (f" · tag {r.tag}" if r.tag else "")
        )
        body.append(
            f'<tr class="notes"><td colspan="{len(RESULT_COLUMNS)}">{h(meta)}'
            + (f' · <span class="{"" if r.ok else "status-bad"}">{h("; ".join(notes))}</span>' if notes else "")
            + "</td></tr>"
        )
    head = "".join(f"<th>{h(c)}</th>" for c in RESULT_COLUMNS)
    tbl = (
        f'<div class="table-wrap"><table class="data results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    cap = (
        f'<p class="caption">{len(cells)} cell(s): the newest ok result of each configuration, else its newest '
        f"attempt{f'; {older} older result(s) of the same cells are in the plots above but not here' if older else ''}."
        " Under each row: when it ran, its peak memory, its tag, and its errors or warnings. "
        "<code>bench report --format md</code> prints this "
        "table for a pull request, <code>--format csv</code> every result.</p>"
    )
    return Section(
        "results",
        "All results",
        "One row per cell (model, backend, device, batch, precision, "
        "scenario) with its statistics, parity against the PyTorch reference and notes.",
        cap + tbl,
        [],
    )


def build_sections(rows: list[Row], reference: str | None = None) -> list[Section]:
    return [
        speed_section(rows),
        precision_section(rows),
        roofline_section(rows),
        gap_section(rows),
        prediction_section(rows),
        timeshare_section(rows),
        matrix_section(rows, reference),
        placement_section(rows),
        claims_section(rows),
        stability_section(rows),
        environment_section(rows),
        results_section(rows),
    ]


def _header(rows: list[Row], query: Query | None, generated: str) -> str:
    ok = sum(r.ok for r in rows)
    dates = sorted(r.created_at for r in rows if r.created_at)
    span = f"{_date(dates[0])} – {_date(dates[-1])} UTC" if dates else "no dates recorded"
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


def render_html(
    records: list[dict[str, Any]],
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
    body = "".join(
        f'<section class="view" id="{h(s.id)}" aria-labelledby="{h(s.id)}-title">'
        f'<h2 id="{h(s.id)}-title">{h(s.title)}</h2><p class="how">{s.how}</p>{s.body}</section>'
        for s in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="effbench">
<title>{h(title)}</title>
<link rel="icon" href="data:,">
<style>{_css()}</style>
<script>{_plotly_js()}</script>
</head>
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
