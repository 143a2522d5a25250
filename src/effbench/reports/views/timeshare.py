"""Where the time goes: per model, op-type shares of measured time next to their roofline bound."""

from __future__ import annotations

from typing import Any

from effbench.reports.common import Figure, Section, axis, base_layout, fmt, fmt_ms, fmt_si, h, note, p, table
from effbench.reports.data import Row, analysis_of, num, profile_of

MAX_OP_TYPES = 12
TOP_LAYERS = 10


def _op_rows(source: dict[str, Any]) -> list[dict[str, Any]]:
    """[{op_type, measured_ms|None, bound_ms|None, count}] from op_types / by_op_type, else from layers."""
    rows = source.get("op_types") or source.get("by_op_type")
    from_ops = isinstance(rows, list) and bool(rows)
    out: dict[str, dict[str, Any]] = {}
    for o in (rows or []) if from_ops else source.get("layers") or []:
        if not isinstance(o, dict):
            continue
        name = str(o.get("op_type") or "?")
        d = out.setdefault(name, {"op_type": name, "measured_ms": None, "bound_ms": None, "count": 0})
        for key in ("measured_ms", "bound_ms"):
            v = num(o.get(key))
            if v is not None:
                d[key] = (d[key] or 0) + v
        d["count"] += int(num(o.get("count")) or num(o.get("kernels")) or 0) if from_ops else 1
    return list(out.values())


def _sources(rows: list[Row]) -> list[tuple[Row, dict[str, Any], str]]:
    """Newest per (model, backend, device, precision): a profile record if there is one, else the analysis."""
    chosen: dict[tuple, tuple[Row, dict[str, Any], str]] = {}
    for r in rows:  # newest first
        if not r.ok:
            continue
        key = (r.model, r.backend, r.device, r.precision_ran, r.batch)
        prof = profile_of(r.rec)
        have = chosen.get(key)
        if prof and (have is None or have[2] != "profile"):
            chosen[key] = (r, prof, "profile")
        elif have is None:
            a = analysis_of(r.rec)
            if a and (a.get("by_op_type") or a.get("layers")):
                chosen[key] = (r, a, "analysis")
    # measured (profiled) results first: the menu opens on one of them
    return sorted(chosen.values(), key=lambda t: (t[2] != "profile", t[0].model, t[0].backend, t[0].device))


def _bars(label: str, ops: list[dict[str, Any]], unmapped: float | None) -> tuple[list[dict], bool]:
    measured = any(o["measured_ms"] for o in ops)
    # bench profile lists unmapped kernels as an "(unmapped)" op type already; older profiles only give a total
    listed_unmapped = any(str(o["op_type"]).startswith("(unmapped") for o in ops)
    key = (lambda o: o["measured_ms"] or 0) if measured else (lambda o: o["bound_ms"] or 0)
    ops = sorted(ops, key=key, reverse=True)
    if len(ops) > MAX_OP_TYPES:
        rest = ops[MAX_OP_TYPES - 1 :]
        other = {
            "op_type": f"other ({len(rest)} types)",
            "count": sum(o["count"] for o in rest),
            "measured_ms": sum(o["measured_ms"] or 0 for o in rest) if measured else None,
            "bound_ms": sum(o["bound_ms"] or 0 for o in rest),
        }
        ops = ops[: MAX_OP_TYPES - 1] + [other]
    if unmapped and not listed_unmapped:
        ops.append({"op_type": "(not mapped to a layer)", "count": 0, "measured_ms": unmapped, "bound_ms": None})
    tot_m = sum(o["measured_ms"] or 0 for o in ops)
    tot_b = sum(o["bound_ms"] or 0 for o in ops)
    cats = [p(o["op_type"]) for o in ops][::-1]
    ops_r = ops[::-1]
    traces = []
    if measured:
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": "measured",
                "y": cats,
                "x": [o["measured_ms"] for o in ops_r],
                "marker": {"color": "#1f77b4"},
                "text": [f"{(o['measured_ms'] or 0) / tot_m * 100:.0f} %" if tot_m else "" for o in ops_r],
                "textposition": "outside",
                "cliponaxis": False,
                "hovertext": [
                    f"<b>{p(o['op_type'])}</b> ({o['count']} layers)<br>measured {fmt_ms(o['measured_ms'])}"
                    f" ms = {fmt((o['measured_ms'] or 0) / tot_m * 100 if tot_m else None, '.3g')} % of "
                    f"measured<br>roofline bound {fmt_ms(o['bound_ms'])} ms"
                    for o in ops_r
                ],
                "hoverinfo": "text",
                "meta": {"role": "measured", "model": p(label)},
            }
        )
    traces.append(
        {
            "type": "bar",
            "orientation": "h",
            "name": "roofline bound",
            "y": cats,
            "x": [o["bound_ms"] for o in ops_r],
            "marker": {"color": "#bbbbbb", "line": {"color": "#888", "width": 1}},
            "text": [f"{(o['bound_ms'] or 0) / tot_b * 100:.0f} %" if tot_b and o["bound_ms"] else "" for o in ops_r],
            "textposition": "outside",
            "cliponaxis": False,
            "hovertext": [
                f"<b>{p(o['op_type'])}</b> ({o['count']} layers)<br>roofline bound {fmt_ms(o['bound_ms'])} ms"
                f" = {fmt((o['bound_ms'] or 0) / tot_b * 100 if tot_b else None, '.3g')} % of the model's bound"
                for o in ops_r
            ],
            "hoverinfo": "text",
            "meta": {"role": "bound", "model": p(label)},
        }
    )
    return traces, measured


def _top_layers(source: dict[str, Any]) -> str:
    layers = [lay for lay in source.get("layers") or [] if isinstance(lay, dict)]
    if not layers:
        return note("No per-layer data in this record.")
    measured = any(num(lay.get("measured_ms")) for lay in layers)
    key = "measured_ms" if measured else "bound_ms"
    layers = sorted(layers, key=lambda lay: num(lay.get(key)) or 0, reverse=True)[:TOP_LAYERS]
    rows = []
    for lay in layers:
        m, b = num(lay.get("measured_ms")), num(lay.get("bound_ms"))
        rows.append(
            [
                str(lay.get("name") or "?"),
                str(lay.get("op_type") or "?"),
                fmt_ms(m),
                fmt_ms(b),
                f"{m / b:.3g}×" if m and b else "–",
                str(lay.get("bound") or "–"),
                fmt(num(lay.get("intensity")), ".3g"),
                fmt_si(num(lay.get("achieved_flops_per_s")), "FLOP/s"),
            ]
        )
    return table(
        ["layer", "op type", "measured ms", "bound ms", "measured / bound", "bound by", "FLOP/byte", "achieved"],
        rows,
        cls="data layers",
    )


def timeshare_section(rows: list[Row]) -> Section:
    how = (
        "For each model, blue bars are the measured time per operator type (share of the profiled total), grey "
        "bars the time the roofline allows for the same operators; a blue bar far longer than its grey one is "
        "where the model loses time. The tables list the slowest layers."
    )
    sources = _sources(rows)
    if not sources:
        empty = note(
            "No per-layer data in these results. Run <code>bench profile --model NAME --backend NAME</code> "
            "for measured per-layer times, or <code>bench run</code> on a device with peaks in "
            "<code>devices.yaml</code> for the roofline bounds per operator type."
        )
        return Section("where-time-goes", "Where the time goes", how, empty, [])
    data: list[dict] = []
    groups: list[tuple[str, int, int]] = []
    details: list[str] = []
    any_unmeasured = False
    for i, (r, src, kind) in enumerate(sources):
        label = f"{r.model} · {r.backend} · {r.device} · {r.precision_ran}"
        unmapped = num(src.get("unmapped_ms")) if kind == "profile" else None
        traces, measured = _bars(label, _op_rows(src), unmapped)
        any_unmeasured |= not measured
        start = len(data)
        for t in traces:
            t["visible"] = i == 0
            t["showlegend"] = True
        data += traces
        groups.append((label, start, len(data)))
        totals = ""
        if kind == "profile":
            totals = (
                f" Profiled total {fmt_ms(num(src.get('profiled_total_ms')))} ms, timed median "
                f"{fmt_ms(num(src.get('timed_median_ms')))} ms."
            )
        details.append(
            f"<details{' open' if i == 0 else ''}><summary>{h(label)} — top {TOP_LAYERS} layers "
            f"({'bench profile' if kind == 'profile' else 'roofline analysis of the run'}).{h(totals)}</summary>"
            f"{_top_layers(src)}</details>"
        )
    layout = base_layout(
        xaxis=axis("time per operator type (ms, batch as run)", rangemode="tozero"),
        yaxis={"automargin": True, "title": {"text": ""}},
        barmode="group",
        bargap=0.25,
        legend={"orientation": "h", "x": 0, "y": -0.12},
        margin={"l": 20, "r": 50, "t": 60 if len(groups) > 1 else 20, "b": 70},
    )
    if len(groups) > 1:
        buttons = []
        for label, start, stop in groups:
            vis = [start <= j < stop for j in range(len(data))]
            buttons.append({"label": p(label), "method": "restyle", "args": ["visible", vis]})
        layout["updatemenus"] = [
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": 0,
                "x": 0,
                "xanchor": "left",
                "y": 1.12,
                "yanchor": "top",
                "bgcolor": "white",
                "bordercolor": "#bbb",
            }
        ]
    fig = Figure("fig-timeshare", data, layout, height=60 + 34 * (MAX_OP_TYPES + 1) + 80)
    body = [
        f'<p class="caption">{len(groups)} model result(s); choose one in the menu.'
        + (
            " Results without profiled times show the roofline bounds only: run <code>bench profile</code> for "
            "measured per-layer times."
            if any_unmeasured
            else ""
        )
        + "</p>",
        fig.div(),
        *details,
    ]
    return Section("where-time-goes", "Where the time goes", how, "".join(body), [fig])
