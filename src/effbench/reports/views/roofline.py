"""Roofline: the device's roofs with each model (and, for a chosen model, its layers) as points."""

from __future__ import annotations

import math
from typing import Any

from effbench.reports.common import Figure, Section, axis, backend_colours, base_layout, fmt, fmt_ms, fmt_si, h, note, p
from effbench.reports.data import Row, analysis_of, num, profile_of
from effbench.reports.views.speed import label_positions

MAX_LAYERS = 150  # layers per model drawn (the heaviest by measured time, else by bound)
_PREC_DASH = {
    "fp32": "solid",
    "tf32": "dash",
    "bf16": "dashdot",
    "fp16": "dot",
    "fp8": "longdash",
    "int8": "longdashdot",
}


def _catalog_roofs(spec_name: str) -> tuple[dict[str, float], float | None]:
    """Other precisions' ceilings of a catalog device (datasheet values only; never detected here)."""
    try:
        from effbench.devices.catalog import load_catalog

        spec = load_catalog().get(spec_name)
    except Exception:  # no catalog, a broken one, or a device not in it: the records' roofs are enough
        return {}, None
    if spec is None or getattr(spec, "detect", False):
        return {}, None
    peaks = {}
    for prec in getattr(spec, "peak_flops", {}) or {}:
        try:
            v = spec.peak(prec, "spec")
        except Exception:
            v = None
        if v:
            peaks[str(prec)] = float(v)
    try:
        bw = spec.bandwidth("spec")
    except Exception:
        bw = None
    return peaks, (float(bw) if bw else None)


def _model_point(r: Row, a: dict[str, Any]) -> tuple[float | None, float | None]:
    flops = num(a.get("flops"))
    nbytes = num(a.get("bytes"))
    intensity = num(a.get("intensity"))
    if intensity is None and flops and nbytes:
        intensity = flops / nbytes
    achieved = num(a.get("achieved_flops_per_s"))
    if achieved is None and flops and r.median:
        achieved = flops / (r.median / 1e3)
    return intensity, achieved


def _layer_points(a: dict[str, Any]) -> tuple[list[dict], bool]:
    layers = [lay for lay in (a.get("layers") or []) if isinstance(lay, dict)]
    measured = any(num(lay.get("measured_ms")) for lay in layers)
    pts: list[dict[str, Any]] = []
    for lay in layers:
        inten = num(lay.get("intensity"))
        flops = num(lay.get("flops"))
        if inten is None or inten <= 0 or not flops:
            continue
        ms = num(lay.get("measured_ms"))
        if measured:
            if not ms:
                continue
            y = num(lay.get("achieved_flops_per_s")) or flops / (ms / 1e3)
        else:
            bound = num(lay.get("bound_ms"))
            if not bound:
                continue
            y = flops / (bound / 1e3)
        pts.append({"lay": lay, "x": inten, "y": y, "ms": ms})
    pts.sort(key=lambda t: -(t["ms"] or num(t["lay"].get("bound_ms")) or 0))
    return pts[:MAX_LAYERS], measured


def _roof_traces(
    peaks: dict[str, float], bw: float | None, x_lo: float, x_hi: float, sources: dict[str, str]
) -> list[dict]:
    traces: list[dict[str, Any]] = []
    for prec, peak in sorted(peaks.items(), key=lambda kv: kv[1]):
        src = sources.get(prec, "")
        src = src if len(src) <= 90 else src[:89] + "…"
        if bw:
            ridge = peak / bw
            xs = [x_lo, ridge, max(x_hi, ridge * 4)]
            ys = [bw * x_lo, peak, peak]
            hover = (
                f"{p(prec)} roof: {fmt_si(peak, 'FLOP/s')}<br>bandwidth {fmt_si(bw, 'B/s')}<br>"
                f"ridge at {fmt(ridge, '.3g')} FLOP/byte{('<br>' + p(src)) if src else ''}"
            )
        else:
            xs, ys = [x_lo, x_hi], [peak, peak]
            hover = f"{p(prec)} roof: {fmt_si(peak, 'FLOP/s')} (no bandwidth known){('<br>' + p(src)) if src else ''}"
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{p(prec)} roof ({fmt_si(peak, 'FLOP/s')})",
                "x": xs,
                "y": ys,
                "line": {"color": "#333", "width": 2, "dash": _PREC_DASH.get(prec, "solid")},
                "hovertext": [hover] * len(xs),
                "hoverinfo": "text",
                "meta": {"role": "roof"},
            }
        )
        if bw:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers+text",
                    "name": f"ridge {p(prec)}",
                    "showlegend": False,
                    "x": [peak / bw],
                    "y": [peak],
                    "text": [f"ridge {fmt(peak / bw, '.3g')} FLOP/B"],
                    "textposition": "bottom right",
                    "textfont": {"size": 10, "color": "#666"},
                    "marker": {"color": "#333", "size": 7, "symbol": "diamond-open"},
                    "hovertext": [hover],
                    "hoverinfo": "text",
                    "meta": {"role": "ridge"},
                }
            )
    return traces


def roofline_figure(
    div_id: str, device: str, entries: list[tuple[Row, dict]], profiles: dict[tuple, dict] | None = None
) -> Figure:
    """entries: (result, its extra.analysis); profiles: (model, backend, precision) -> a profile's layers
    source (measured per-layer times win over the run's bound-only layers)."""
    profiles = profiles or {}
    colours = backend_colours(r.backend for r, _ in entries)
    peaks: dict[str, float] = {}
    sources: dict[str, str] = {}
    run_precs: set[str] = set()
    bw: float | None = None
    for r, a in entries:
        pk = num(a.get("peak_flops_per_s"))
        prec = str(a.get("precision") or r.precision_ran or r.precision)
        if pk and prec not in peaks:
            peaks[prec] = pk
            run_precs.add(prec)
            sources[prec] = str(a.get("peak_source") or "as recorded with the results")
        b = num(a.get("bandwidth_bytes_per_s"))
        if b and not bw:
            bw = b
            sources["bandwidth"] = str(a.get("bandwidth_source") or "")
    cat_peaks, cat_bw = _catalog_roofs(device)
    for prec, pk in cat_peaks.items():
        if prec not in peaks:
            peaks[prec] = pk
            sources[prec] = "devices.yaml datasheet value"
    bw = bw or cat_bw

    model_traces: dict[str, dict] = {}
    layer_traces: list[tuple[str, dict]] = []
    xs_all: list[float] = []
    ys_all: list[float] = []
    for r, a in entries:
        x, y = _model_point(r, a)
        if x is None or y is None or x <= 0 or y <= 0:
            continue
        xs_all.append(x)
        ys_all.append(y)
        t = model_traces.setdefault(
            r.backend,
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": f"models · {p(r.backend)}",
                "x": [],
                "y": [],
                "text": [],
                "hovertext": [],
                "hoverinfo": "text",
                "textposition": "bottom center",
                "textfont": {"size": 10, "color": "#555"},
                "marker": {
                    "color": colours[r.backend],
                    "size": 13,
                    "symbol": "circle",
                    "line": {"color": "white", "width": 1.5},
                },
                "meta": {"role": "models"},
                "cliponaxis": False,
            },
        )
        t["x"].append(x)
        t["y"].append(y)
        t["text"].append(p(r.model))
        t["hovertext"].append(
            f"<b>{p(r.model)}</b><br>{p(r.backend)} · {p(r.precision_ran)} · batch {p(r.batch)}<br>"
            f"intensity {fmt(x, '.3g')} FLOP/byte<br>achieved {fmt_si(y, 'FLOP/s')}<br>"
            f"{fmt_si(num(a.get('flops')), 'FLOP')} · {fmt_si(num(a.get('bytes')), 'B')} moved<br>"
            f"median {fmt_ms(r.median)} ms"
        )
        pts, measured = _layer_points(profiles.get((r.model, r.backend, r.precision_ran)) or a)
        if pts:
            label = f"{r.model} · {r.backend} · {r.precision_ran}"
            layer_traces.append(
                (
                    label,
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": f"layers of {p(r.model)} · {p(r.backend)}" + ("" if measured else " (bound only)"),
                        "x": [t_["x"] for t_ in pts],
                        "y": [t_["y"] for t_ in pts],
                        "hovertext": [
                            f"<b>{p(t_['lay'].get('name'))}</b> ({p(t_['lay'].get('op_type'))})<br>"
                            f"intensity {fmt(t_['x'], '.3g')} FLOP/byte · {p(t_['lay'].get('bound') or '?')}-bound<br>"
                            + (
                                f"measured {fmt_ms(t_['ms'])} ms · achieved {fmt_si(t_['y'], 'FLOP/s')}<br>"
                                if t_["ms"]
                                else "not profiled: drawn at its roofline bound<br>"
                            )
                            + f"bound {fmt_ms(num(t_['lay'].get('bound_ms')))} ms"
                            for t_ in pts
                        ],
                        "hoverinfo": "text",
                        "marker": {
                            "color": colours[r.backend],
                            "size": 7,
                            "opacity": 0.65,
                            "symbol": "circle" if measured else "circle-open",
                        },
                        "meta": {"role": "layers", "model": p(label), "measured": measured},
                    },
                )
            )
            xs_all += [t_["x"] for t_ in pts]
            ys_all += [t_["y"] for t_ in pts]
    run_peak = max((pk for prec, pk in peaks.items() if prec in run_precs), default=None)
    above = 0
    if run_peak:
        for t in list(model_traces.values()) + [t for _, t in layer_traces]:
            for x, y in zip(t["x"], t["y"]):
                above += y > 1.05 * (min(run_peak, bw * x) if bw else run_peak)
    ridges = [pk / bw for pk in peaks.values()] if bw else []
    x_lo = min(xs_all + ridges) / 4 if xs_all or ridges else 0.1
    x_hi = max(xs_all + ridges) * 4 if xs_all or ridges else 1000.0
    roofs = _roof_traces(peaks, bw, x_lo, x_hi, sources)
    models = list(model_traces.values())
    n_roofs, n_layers, n_models = len(roofs), len(layer_traces), len(models)
    # layers under the model points, roofs under everything
    data = roofs + [t for _, t in layer_traces] + models

    def visible(i: int | None) -> list[bool]:
        return [True] * n_roofs + [j == i for j in range(n_layers)] + [True] * n_models

    first = next((i for i, (_, t) in enumerate(layer_traces) if t["meta"]["measured"]), 0)
    for i, (_, t) in enumerate(layer_traces):
        t["visible"] = i == first
    layout = base_layout(
        xaxis=axis("arithmetic intensity (FLOP/byte)", log=True, dtick=1),
        yaxis=axis("attainable / achieved (FLOP/s)", log=True, dtick=1, exponentformat="SI"),
        legend={"x": 1.01, "y": 1, "xanchor": "left"},
        margin={"l": 80, "r": 20, "t": 60, "b": 60},
        meta={"above_roof": above},
    )
    if ys_all or peaks:
        lo = min(ys_all + list(peaks.values()))
        hi = max(ys_all + list(peaks.values()))
        layout["yaxis"]["range"] = [math.log10(lo) - 0.7, math.log10(hi) + 0.4]
    y_span = (layout["yaxis"]["range"][1] - layout["yaxis"]["range"][0]) if "range" in layout["yaxis"] else None
    layout["xaxis"]["range"] = [math.log10(x_lo), math.log10(x_hi)]
    # label positions over all model points together, so nearby names do not overprint
    flat = [(t, i) for t in model_traces.values() for i in range(len(t["x"]))]
    pos = label_positions(
        [(t["x"][i], t["y"][i]) for t, i in flat],
        True,
        True,
        x_span=layout["xaxis"]["range"][1] - layout["xaxis"]["range"][0],
        y_span=y_span,
    )
    for t in model_traces.values():
        t["textposition"] = ["top center"] * len(t["x"])
    for (t, i), ps in zip(flat, pos):
        t["textposition"][i] = ps
    if layer_traces:
        buttons = [{"label": "layers: none", "method": "restyle", "args": ["visible", visible(None)]}]
        for i, (label, _) in enumerate(layer_traces):
            buttons.append({"label": f"layers: {p(label)}", "method": "restyle", "args": ["visible", visible(i)]})
        layout["updatemenus"] = [
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": first + 1,
                "x": 0,
                "xanchor": "left",
                "y": 1.13,
                "yanchor": "top",
                "showactive": True,
                "bgcolor": "white",
                "bordercolor": "#bbb",
            }
        ]
    return Figure(div_id, data, layout, height=520)


def roofline_section(rows: list[Row]) -> Section:
    with_analysis = [(r, a) for r in rows if r.ok and r.scenario != "profile" for a in [analysis_of(r.rec)] if a]
    how = (
        "Each model is a point at its arithmetic intensity (FLOP per byte moved) and the FLOP/s it achieved; "
        "the roofs are what the device allows (compute ceiling per precision, bandwidth slope below the ridge "
        "point). Far below the roof means time lost to something other than arithmetic or memory traffic."
    )
    if not with_analysis:
        empty = note(
            "No roofline data in these results. It is filled in by <code>bench run</code> when the device "
            "has peak FLOP/s (and memory bandwidth) in <code>devices.yaml</code>: run on a catalogued "
            "device (<code>bench devices list</code>), or add <code>peak_flops</code> / "
            "<code>memory_bandwidth</code> to its entry (<code>bench devices calibrate --save</code> "
            "measures them on this machine), then <code>bench run</code> again."
        )
        return Section("roofline", "Roofline", how, empty, [])
    by_device: dict[str, list[tuple[Row, dict]]] = {}
    for r, a in with_analysis:
        spec = str(a.get("device_spec") or r.device)
        by_device.setdefault(spec, []).append((r, a))
    profiles: dict[str, dict[tuple, dict]] = {}
    for r in rows:  # newest first: keep the newest profile per model, backend and precision
        prof = profile_of(r.rec) if r.ok else None
        if prof and prof.get("layers"):
            spec = str((analysis_of(r.rec) or {}).get("device_spec") or r.device)
            profiles.setdefault(spec, {}).setdefault((r.model, r.backend, r.precision_ran), prof)
    # the newest result per (model, backend, precision) on each device
    figures: list[Figure] = []
    body: list[str] = []
    for i, (spec, entries) in enumerate(sorted(by_device.items())):
        seen = set()
        latest = []
        for r, a in entries:
            key = (r.model, r.backend, r.precision_ran, r.batch)
            if key not in seen:
                seen.add(key)
                latest.append((r, a))
        fig = roofline_figure(f"fig-roofline-{i}", spec, latest, profiles.get(spec))
        figures.append(fig)
        has_layers = any(m.get("role") == "layers" for t in fig.data for m in [t.get("meta") or {}])
        warns = sorted({str(w) for _, a in latest for w in (a.get("warnings") or []) if isinstance(w, str)})
        body.append(
            f'<h3>Device {h(spec)}</h3><p class="caption">{len(latest)} model result(s), newest per '
            "model, backend and precision, batch as run."
            + (
                " Pick a model in the menu to show its layers (filled: profiled times; hollow: not "
                "profiled, drawn on their bound)."
                if has_layers
                else ""
            )
            + (
                f" {fig.layout['meta']['above_roof']} point(s) lie above the roof: the device did better than "
                "the peak or bandwidth on record (a calibration taken under load, or a clock other than the "
                "datasheet's), so read the roof as a lower bound here."
                if fig.layout["meta"]["above_roof"]
                else ""
            )
            + "</p>"
            + fig.div()
            + (note("Analysis notes: " + h("; ".join(warns[:6])) + ".", "warn") if warns else "")
        )
    return Section("roofline", "Roofline", how, "".join(body), figures)
