"""Efficiency gap (after Lavin 2024): per family, top-1 against ideal and measured latency."""

from __future__ import annotations

from effbench.reports.common import (
    FAMILY_COLOURS,
    Figure,
    Section,
    axis,
    backend_colours,
    base_layout,
    device_symbols,
    fmt,
    fmt_ms,
    h,
    note,
    p,
    wants_log,
)
from effbench.reports.data import Row


def _latest(rows: list[Row]) -> list[Row]:
    seen, out = set(), []
    for r in rows:  # newest first
        if r.cell not in seen:
            seen.add(r.cell)
            out.append(r)
    return out


def gap_figure(div_id: str, rows: list[Row]) -> Figure:
    families = sorted({r.family for r in rows})
    fam_colour = {f: FAMILY_COLOURS[i % len(FAMILY_COLOURS)] for i, f in enumerate(families)}
    symbols = device_symbols(r.backend for r in rows)  # one symbol per backend on the measured curves
    multi_dev = len({r.device for r in rows}) > 1
    data: list[dict] = []
    # horizontal connectors first, so the points sit on top
    cx: list[float | None] = []
    cy: list[float | None] = []
    for r in rows:
        cx += [r.ideal_ms, r.median, None]
        cy += [r.top1, r.top1, None]
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "gap (ideal → measured)",
            "x": cx,
            "y": cy,
            "line": {"color": "rgba(120,120,120,0.45)", "width": 1},
            "hoverinfo": "skip",
            "meta": {"role": "connector"},
        }
    )
    for fam in families:
        fr = [r for r in rows if r.family == fam]
        # ideal: one point per model, device and precision (it does not depend on the backend)
        ideal: dict[tuple, Row] = {}
        for r in fr:
            ideal.setdefault((r.model, r.device, r.precision_ran), r)
        for dev_prec in sorted({(k[1], k[2]) for k in ideal}):
            pts = sorted((r for k, r in ideal.items() if (k[1], k[2]) == dev_prec), key=lambda r: r.top1 or 0.0)
            suffix = f" ({p(dev_prec[0])}, {p(dev_prec[1])})" if multi_dev or len({k[2] for k in ideal}) > 1 else ""
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{p(fam)} ideal{suffix}",
                    "legendgroup": p(fam),
                    "x": [r.ideal_ms for r in pts],
                    "y": [r.top1 for r in pts],
                    "line": {"color": fam_colour[fam], "dash": "dash", "width": 1.5},
                    "marker": {
                        "color": "white",
                        "size": 10,
                        "symbol": "circle",
                        "line": {"color": fam_colour[fam], "width": 2},
                    },
                    "hovertext": [
                        f"<b>{p(r.model)}</b> ideal latency {fmt_ms(r.ideal_ms)} ms<br>"
                        f"= operations / peak on {p(r.device)} ({p(r.precision_ran)})<br>"
                        f"top-1 {fmt(r.top1, '.1f')} %"
                        for r in pts
                    ],
                    "hoverinfo": "text",
                    "meta": {"role": "ideal"},
                }
            )
        for backend, device in sorted({(r.backend, r.device) for r in fr}):
            pts = sorted((r for r in fr if r.backend == backend and r.device == device), key=lambda r: r.top1 or 0.0)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{p(fam)} measured · {p(backend)}" + (f" · {p(device)}" if multi_dev else ""),
                    "legendgroup": p(fam),
                    "x": [r.median for r in pts],
                    "y": [r.top1 for r in pts],
                    "line": {"color": fam_colour[fam], "width": 2},
                    "marker": {
                        "color": fam_colour[fam],
                        "size": 10,
                        "symbol": symbols[backend],
                        "line": {"color": "white", "width": 1},
                    },
                    "hovertext": [
                        f"<b>{p(r.model)}</b> · {p(r.backend)} · {p(r.device)}<br>"
                        f"measured {fmt_ms(r.median)} ms · ideal {fmt_ms(r.ideal_ms)} ms<br>"
                        f"efficiency {fmt(r.efficiency * 100 if r.efficiency else None, '.3g')} % · "
                        f"gap {fmt((r.median or 0.0) / r.ideal_ms if r.ideal_ms else None, '.3g')}×<br>"
                        f"top-1 {fmt(r.top1, '.1f')} %"
                        for r in pts
                    ],
                    "hoverinfo": "text",
                    "meta": {"role": "measured"},
                }
            )
    xs = [r.median for r in rows] + [r.ideal_ms for r in rows]
    layout = base_layout(
        xaxis=axis("latency, batch 1 (ms)", log=wants_log(xs, 4), values=xs),
        yaxis=axis("ImageNet-1k top-1 (%)"),
        legend={"x": 1.01, "y": 1, "xanchor": "left"},
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
    )
    return Figure(div_id, data, layout, height=480)


def efficiency_figure(div_id: str, rows: list[Row]) -> Figure:
    colours = backend_colours(r.backend for r in rows)
    ordered = sorted(rows, key=lambda r: r.efficiency or 0)
    data = []
    for backend in sorted(colours):
        sel = [r for r in ordered if r.backend == backend]
        if not sel:
            continue
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": p(backend),
                "y": [p(r.label) for r in sel],
                "x": [r.efficiency for r in sel],
                "marker": {"color": colours[backend]},
                "text": [f"{(r.efficiency or 0.0) * 100:.3g} %" for r in sel],
                "textposition": "outside",
                "cliponaxis": False,
                "hovertext": [
                    f"<b>{p(r.label)}</b><br>ideal {fmt_ms(r.ideal_ms)} ms / measured {fmt_ms(r.median)} ms"
                    f"<br>= {(r.efficiency or 0.0) * 100:.3g} % computational efficiency"
                    for r in sel
                ],
                "hoverinfo": "text",
                "meta": {"role": "efficiency"},
            }
        )
    cats = [p(r.label) for r in ordered]
    layout = base_layout(
        xaxis=axis("computational efficiency (ideal / measured latency)", tickformat=".0%", rangemode="tozero"),
        yaxis={"categoryorder": "array", "categoryarray": cats, "automargin": True, "title": {"text": ""}},
        barmode="overlay",
        legend={"x": 1.01, "y": 1, "xanchor": "left"},
        margin={"l": 20, "r": 60, "t": 20, "b": 60},
    )
    mx = max((r.efficiency or 0.0 for r in rows), default=0.0)
    layout["xaxis"]["range"] = [0, mx * 1.18 if mx else 1]
    return Figure(div_id, data, layout, height=max(220, 60 + 28 * len(rows)))


def gap_section(rows: list[Row]) -> Section:
    how = (
        "Per model family, dashed curves place each model at its ideal latency (operations / peak FLOP/s of "
        "the device) and solid curves at its measured latency: the horizontal distance between the two "
        "is the efficiency gap; the bars show computational efficiency = ideal / measured (Lavin 2024)."
    )
    usable = _latest([r for r in rows if r.ok and r.is_latency_b1 and r.median and r.ideal_ms])
    if not usable:
        empty = note(
            "No ideal latency in these results. It needs the model's operation count and the device's "
            "peak FLOP/s: <code>bench run</code> fills <code>ideal_ms</code> when the device has "
            "<code>peak_flops</code> in <code>devices.yaml</code> (add them, or run "
            "<code>bench devices calibrate --save</code>), then run again."
        )
        return Section("efficiency-gap", "Efficiency gap", how, empty, [])
    body: list[str] = []
    figures: list[Figure] = []
    with_top1 = [r for r in usable if r.top1 is not None]
    if with_top1:
        f = gap_figure("fig-gap", with_top1)
        figures.append(f)
        body.append(
            "<h3>Top-1 against ideal and measured latency</h3>"
            f'<p class="caption">{len(with_top1)} result(s), the newest per cell; batch 1, latency '
            "scenario.</p>" + f.div()
        )
    missing = sorted({r.model for r in usable if r.top1 is None})
    if missing:
        body.append(note(f"Not on the accuracy plot (no top-1 known): {h(', '.join(missing))}.", "warn"))
    f = efficiency_figure("fig-efficiency", usable)
    figures.append(f)
    body.append(
        "<h3>Computational efficiency per model</h3>"
        '<p class="caption">Ideal / measured latency; 100 % would be every cycle spent on useful '
        "arithmetic at the device's peak.</p>" + f.div()
    )
    return Section("efficiency-gap", "Efficiency gap", how, "".join(body), figures)
