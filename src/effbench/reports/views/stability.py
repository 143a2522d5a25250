"""Stability: the latency distribution of each result and latency over the iteration index."""

from __future__ import annotations

import math

from effbench.reports.common import (
    Figure,
    Section,
    axis,
    backend_colours,
    base_layout,
    downsample_series,
    fmt,
    fmt_ms,
    log_ticks,
    note,
    p,
    quantile_sample,
    tick_text,
    wants_log,
)
from effbench.reports.data import Row

MAX_DIST_POINTS = 1000  # per result in the distribution (evenly spaced quantiles of all samples)
MAX_SERIES_POINTS = 1200  # per result over iterations (min and max of each bucket)
MAX_RESULTS = 40  # results drawn (the newest)


def _unique_labels(rows: list[Row]) -> list[str]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.label] = counts.get(r.label, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        if counts[r.label] > 1:
            seen[r.label] = seen.get(r.label, 0) + 1
            out.append(f"{r.label} ({r.created_at[:16].replace('T', ' ')})")
        else:
            out.append(r.label)
    return out


def stability_section(rows: list[Row]) -> Section:
    how = (
        "The violins show each result's latency distribution (box: quartiles, line: median); the lower plot "
        "shows latency in measurement order, so drift, warm-up left-overs or thermal throttling show as a trend "
        "or steps."
    )
    sel = [r for r in rows if r.ok and r.scenario != "profile" and r.samples]
    if not sel:
        return Section(
            "stability",
            "Stability",
            how,
            note(
                "No raw samples in these results (records keep <code>samples_ms</code> since the first "
                "release: run <code>bench run</code> again)."
            ),
            [],
        )
    dropped = max(0, len(sel) - MAX_RESULTS)
    sel = sel[:MAX_RESULTS]
    sel.sort(key=lambda r: (r.model, r.backend, r.device, r.batch or 0, r.precision, r.created_at))
    labels = _unique_labels(sel)
    colours = backend_colours(r.backend for r in sel)
    dist: list[dict] = []
    series: list[dict] = []
    thinned_dist = thinned_series = 0
    all_vals: list[float] = []
    for r, label in zip(sel, labels):
        s = r.samples
        all_vals += [min(s), max(s)]
        ds = quantile_sample(s, MAX_DIST_POINTS)
        thinned_dist += len(ds) < len(s)
        shown = (
            f"{len(ds)} of {len(s)} samples shown (evenly spaced quantiles)"
            if len(ds) < len(s)
            else f"all {len(s)} samples"
        )
        dist.append(
            {
                "type": "violin",
                "name": p(label),
                "x": [p(label)] * len(ds),
                "y": ds,
                "legendgroup": p(r.backend),
                "showlegend": False,
                "line": {"color": colours[r.backend], "width": 1.2},
                "fillcolor": colours[r.backend],
                "opacity": 0.55,
                "box": {"visible": True, "width": 0.25},
                "meanline": {"visible": False},
                "points": False,
                "spanmode": "hard",
                "scalemode": "width",
                "hoveron": "violins",
                "text": p(
                    f"{label}: median {fmt_ms(r.median)} ms, p99 {fmt_ms(r.p99)} ms, "
                    f"CV {fmt((r.cv or 0) * 100, '.3g')} %, {shown}"
                ),
                "hoverinfo": "text",
                "meta": {"role": "distribution"},
            }
        )
        idx, vals = downsample_series(s, MAX_SERIES_POINTS)
        thinned_series += len(vals) < len(s)
        note_ds = (
            f"downsampled: {len(vals)} of {len(s)} samples (min and max per bucket)"
            if len(vals) < len(s)
            else f"all {len(s)} samples"
        )
        series.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(vals) <= 200 else "lines",
                "name": p(label),
                "x": idx,
                "y": vals,
                "line": {"width": 1.2, "color": colours[r.backend]},
                "marker": {"size": 4},
                "opacity": 0.85,
                "hovertemplate": f"{p(label)}<br>iteration %{{x}}: %{{y:.4g}} ms<br>{p(note_ds)}<extra></extra>",
                "meta": {"role": "series", "thinned": len(vals) < len(s)},
            }
        )
    log = wants_log(all_vals, 20)
    if log:
        # A violin's density is estimated on the values it is given: on a log axis plotly would estimate it on
        # the linear values and draw it stretched. Give it log10(ms) on a linear axis labelled in ms instead.
        for t in dist:
            t["y"] = [math.log10(v) if v > 0 else None for v in t["y"]]
    ticks = log_ticks(min(v for v in all_vals if v > 0), max(all_vals)) if log else []
    dist_axis = (
        axis(
            "latency per iteration (ms, log scale)",
            tickvals=[math.log10(t) for t in ticks],
            ticktext=[tick_text(t) for t in ticks],
        )
        if log
        else axis("latency per iteration (ms)")
    )
    n = len(sel)
    f_dist = Figure(
        "fig-stability-dist",
        dist,
        base_layout(
            xaxis={"tickangle": -25 if n > 3 else 0, "automargin": True, "title": {"text": ""}},
            yaxis=dist_axis,
            violinmode="overlay",
            showlegend=False,
            margin={"l": 70, "r": 20, "t": 20, "b": 40},
        ),
        height=440,
    )
    f_series = Figure(
        "fig-stability-series",
        series,
        base_layout(
            xaxis=axis("iteration (measurement order)"),
            yaxis=axis("latency (ms, log scale)" if log else "latency (ms)", log=log, values=all_vals),
            legend={"orientation": "h", "x": 0, "y": -0.2},
            margin={"l": 70, "r": 20, "t": 20, "b": 60},
        ),
        height=420 + 20 * ((n + 2) // 3),
    )
    caption_dist = (
        f'<p class="caption">{n} result(s)'
        + (f" (the newest {MAX_RESULTS}; {dropped} older left out)" if dropped else "")
        + (
            f"; {thinned_dist} with more than {MAX_DIST_POINTS} samples are drawn from evenly spaced "
            "quantiles to keep the file small"
            if thinned_dist
            else ""
        )
        + ".</p>"
    )
    caption_series = (
        '<p class="caption">Click a legend entry to hide it, double-click to show it alone.'
        + (
            f" {thinned_series} series longer than {MAX_SERIES_POINTS} samples are downsampled "
            "(the minimum and maximum of each bucket are kept, so spikes stay visible); the hover says "
            "how many samples are drawn."
            if thinned_series
            else ""
        )
        + "</p>"
    )
    body = (
        "<h3>Distribution per result</h3>"
        + caption_dist
        + f_dist.div()
        + "<h3>Latency over iterations</h3>"
        + caption_series
        + f_series.div()
    )
    return Section("stability", "Stability", how, body, [f_dist, f_series])
