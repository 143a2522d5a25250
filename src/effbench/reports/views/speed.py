"""Speed-accuracy: ImageNet top-1 against latency, throughput and energy, with Pareto frontiers."""

from __future__ import annotations

from typing import Callable

from effbench.reports.common import (
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
from effbench.reports.data import Row, low_precision

LABEL_POINTS_UP_TO = 40  # model names next to the points when there are few enough


def pareto(points: list[tuple[float, float]], lower_is_better: bool = True) -> list[tuple[float, float]]:
    """Non-dominated (x, top1) points, sorted by x: each one more accurate than every better-x point."""
    ordered = sorted(points, key=lambda t: (t[0], -t[1]) if lower_is_better else (-t[0], -t[1]))
    front: list[tuple[float, float]] = []
    best = float("-inf")
    for x, y in ordered:
        if y > best:
            front.append((x, y))
            best = y
    return sorted(front)


def label_positions(
    points: list[tuple[float, float]],
    log_x: bool,
    log_y: bool = False,
    x_span: float | None = None,
    y_span: float | None = None,
) -> list[str]:
    """A text position per point: above, unless an already-labelled neighbour is too close (then below,
    then left or right), so names of nearby points do not print over each other."""
    import math

    if not points:
        return []
    xs = [math.log10(x) if log_x and x > 0 else x for x, _ in points]
    ys = [math.log10(y) if log_y and y > 0 else y for _, y in points]
    xr = x_span or (max(xs) - min(xs)) or 1.0  # the axis span (in log10 units on a log axis)
    yr = y_span or (max(ys) - min(ys)) or 1.0
    placed: list[tuple[float, float, str]] = []
    out: list[tuple[int, str]] = []
    for i in sorted(range(len(points)), key=lambda i: (xs[i], -ys[i])):
        near = {pos for (px, py, pos) in placed if abs(px - xs[i]) / xr < 0.12 and abs(py - ys[i]) / yr < 0.06}
        pos = next(
            (c for c in ("top center", "bottom center", "middle right", "middle left") if c not in near), "top center"
        )
        placed.append((xs[i], ys[i], pos))
        out.append((i, pos))
    return [pos for _, pos in sorted(out)]


def _top1_hover(r: Row) -> str:
    if not r.top1_measured:
        return f"top-1 {fmt(r.top1, '.1f')} % ({p(r.top1_source or '?')[:60]})"
    acc = r.accuracy or {}
    ci = f" [{r.top1_ci[0]:.1f}–{r.top1_ci[1]:.1f}]" if r.top1_ci else ""
    where = f" on {acc['images']} images of {p(str(acc.get('dataset') or '?'))[-50:]}" if acc.get("images") else ""
    drop = (
        f"<br>drop vs fp32 {p((acc.get('reference') or {}).get('runtime', 'reference'))}: "
        f"{fmt(acc.get('drop'), '.2f')} points"
        if acc.get("drop") is not None
        else ""
    )
    return f"top-1 {fmt(r.top1, '.1f')} %{ci} measured{where}{drop}"


def _marker_symbol(symbol: str, measured: bool) -> str:
    """Measured top-1: the device's filled symbol; a model card's number: the same symbol, open."""
    return symbol if measured else f"{symbol}-open"


def _hover(r: Row, extra: str = "") -> str:
    ci = f"{fmt_ms(r.ci_low)}–{fmt_ms(r.ci_high)} ms" if r.ci_low is not None and r.ci_high is not None else "–"
    prec = r.precision if r.precision_ran in ("", r.precision) else f"{r.precision} (ran {r.precision_ran})"
    lines = [
        f"<b>{p(r.model)}</b>",
        f"backend: {p(r.backend)} · device: {p(r.device)}",
        f"batch {p(r.batch)} · {p(prec)} · {p(r.scenario)}",
        f"median {fmt_ms(r.median)} ms · 95% CI {ci}",
        f"throughput {fmt(r.throughput, '.4g')} img/s",
        _top1_hover(r),
    ]
    if extra:
        lines.append(extra)
    if r.tag:
        lines.append(f"tag: {p(r.tag)}")
    lines.append(f"run {p(r.created_at)}")
    return "<br>".join(lines)


def speed_figure(
    div_id: str,
    rows: list[Row],
    x_of: Callable[[Row], float | None],
    x_title: str,
    lower_is_better: bool,
    hover_extra: Callable[[Row], str] | None = None,
    show_ci: bool = False,
) -> Figure:
    colours = backend_colours(r.backend for r in rows)
    symbols = device_symbols(r.device for r in rows)
    label = len(rows) <= LABEL_POINTS_UP_TO
    data: list[dict] = []
    groups: dict[tuple[str, str, str, bool], list[Row]] = {}
    for r in rows:  # measured and card points apart (a trace has one marker symbol); each precision its own trace
        groups.setdefault((r.backend, r.device, r.precision_ran or r.precision, r.top1_measured), []).append(r)
    multi_device = len(symbols) > 1
    mixed = len({r.top1_measured for r in rows}) > 1
    multi_precision = len({g[2] for g in groups}) > 1 or any(g[2] != "fp32" for g in groups)
    xs_all = [x_of(r) for r in rows]
    points = [(x or 0.0, r.top1 or 0.0) for x, r in zip(xs_all, rows)]
    positions = dict(zip((id(r) for r in rows), label_positions(points, wants_log(xs_all))))
    for (backend, device, precision, measured), grp in sorted(groups.items()):
        trace = {
            "type": "scatter",
            "mode": "markers+text" if label else "markers",
            "name": p(backend)
            + (f" · {p(device)}" if multi_device else "")
            + (f" · {p(precision)}" if multi_precision else "")
            + ((" · measured" if measured else " · card") if mixed else ""),
            "legendgroup": p(backend),
            "x": [x_of(r) for r in grp],
            "y": [r.top1 for r in grp],
            "text": [p(r.model) for r in grp] if label else None,
            "textposition": [positions[id(r)] for r in grp],
            "textfont": {"size": 10, "color": "#555"},
            "hovertext": [_hover(r, hover_extra(r) if hover_extra else "") for r in grp],
            "hoverinfo": "text",
            "marker": {
                "color": colours[backend],
                "symbol": _marker_symbol(symbols[device], measured),
                "size": 11,
                "line": {"color": colours[backend], "width": 1.5},
            },
            "meta": {"role": "points", "top1": "measured" if measured else "card", "precision": p(precision)},
            "cliponaxis": False,
        }
        if measured and any(r.top1_ci for r in grp):  # its Wilson 95% interval
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "thickness": 1,
                "width": 3,
                "color": colours[backend],
                "array": [(r.top1_ci[1] - (r.top1 or 0.0)) if r.top1_ci else 0 for r in grp],
                "arrayminus": [((r.top1 or 0.0) - r.top1_ci[0]) if r.top1_ci else 0 for r in grp],
            }
        if show_ci:
            trace["error_x"] = {
                "type": "data",
                "symmetric": False,
                "thickness": 1,
                "width": 3,
                "color": colours[backend],
                "array": [(r.ci_high - r.median) if r.ci_high is not None and r.median is not None else 0 for r in grp],
                "arrayminus": [
                    (r.median - r.ci_low) if r.ci_low is not None and r.median is not None else 0 for r in grp
                ],
            }
        data.append(trace)
    for device in sorted(symbols):
        pts = [(x_of(r) or 0.0, r.top1 or 0.0) for r in rows if r.device == device]
        front = pareto(pts, lower_is_better)
        if len(front) < 1:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"Pareto frontier · {p(device)}",
                "x": [f[0] for f in front],
                "y": [f[1] for f in front],
                "line": {"color": "#444", "dash": "dot", "width": 1.5, "shape": "linear"},
                "hoverinfo": "skip",
                "meta": {"role": "pareto", "device": p(device)},
            }
        )
    xs = [x_of(r) for r in rows]
    measured = any(r.top1_measured for r in rows)
    layout = base_layout(
        xaxis=axis(x_title, log=wants_log(xs), values=xs),
        yaxis=axis("top-1 (%): filled measured, open card" if measured else "ImageNet-1k top-1 (%)"),
        legend={"orientation": "v", "x": 1.01, "y": 1, "xanchor": "left"},
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
    )
    return Figure(div_id, data, layout, height=470)


def speed_section(rows: list[Row]) -> Section:
    ok = [r for r in rows if r.ok and r.scenario != "profile"]
    unmeasured_low = sorted({r.label for r in ok if r.top1 is None and low_precision(r.rec)})
    no_top1 = sorted({r.model for r in ok if r.top1 is None and not low_precision(r.rec)})
    lat = [r for r in ok if r.is_latency_b1 and r.median is not None and r.top1 is not None]
    thr = [r for r in ok if r.throughput is not None and r.top1 is not None]
    energy = [r for r in ok if r.energy_j is not None and r.top1 is not None]
    body: list[str] = []
    figures: list[Figure] = []

    if lat:
        f = speed_figure(
            "fig-speed-latency",
            lat,
            lambda r: r.median,
            "median latency, batch 1 (ms)",
            lower_is_better=True,
            show_ci=True,
        )
        figures.append(f)
        body.append(
            f'<h3>Top-1 against latency</h3><p class="caption">One point per stored result '
            f"({len(lat)}: latency scenario, batch 1, status ok); horizontal whiskers are the 95% CI of the "
            "median. Up and to the left is better.</p>" + f.div()
        )
    else:
        body.append(
            note(
                "No batch-1 latency results with a known top-1: run "
                "<code>bench run --model NAME --backend NAME</code> (latency scenario, batch 1 is the "
                "default)."
            )
        )
    if thr:
        f = speed_figure(
            "fig-speed-throughput",
            thr,
            lambda r: r.throughput,
            "throughput (img/s)",
            lower_is_better=False,
            hover_extra=lambda r: (
                "" if r.scenario == "throughput" else "(latency scenario: throughput = batch / median)"
            ),
        )
        figures.append(f)
        n_thr = sum(r.scenario == "throughput" for r in thr)
        body.append(
            '<h3>Top-1 against throughput</h3><p class="caption">Every ok result with a throughput '
            f"({len(thr)}; {n_thr} from the throughput scenario, the rest are batch / median of a latency "
            "run). Up and to the right is better; use <code>--scenario throughput --batch 32</code> for "
            "the large-batch numbers papers quote.</p>" + f.div()
        )
    if energy:
        f = speed_figure(
            "fig-speed-energy", energy, lambda r: r.energy_j, "energy per image (J/img)", lower_is_better=True
        )
        figures.append(f)
        body.append(
            f'<h3>Top-1 against energy</h3><p class="caption">{len(energy)} result(s) with a '
            "hardware energy meter. Up and to the left is better.</p>" + f.div()
        )
    else:
        reasons = sorted({r.energy_reason for r in ok if r.energy_reason})
        why = f" (the records say: {h('; '.join(reasons))})" if reasons else ""
        body.append(
            note(
                "No energy per image in these results" + why + ". Energy needs a hardware meter "
                "(NVML on NVIDIA GPUs); effbench never estimates it."
            )
        )
    n_measured = sum(r.top1_measured for r in ok if r.top1 is not None)
    datasets = sorted({str((r.accuracy or {}).get("dataset_hash", ""))[:12] for r in ok if r.accuracy})
    if n_measured:
        body.insert(
            0,
            '<p class="caption">' + f"{n_measured} result(s) carry a top-1 measured on the very session "
            "that was timed (<code>bench run --eval DIR</code>): filled markers, with the Wilson 95% interval "
            "as vertical whiskers. Open markers are a model card's reported ImageNet top-1."
            + (
                f" The measured points come from {len(datasets)} different evaluation sets: compare "
                "accuracy only within one."
                if len(datasets) > 1
                else ""
            )
            + "</p>",
        )
    if no_top1:
        body.append(
            note(
                f"Not placed (no top-1 on a model card and none measured: add <code>--eval DIR</code>): "
                f"{h(', '.join(no_top1))}.",
                "warn",
            )
        )
    if unmeasured_low:
        body.append(
            note(
                "Not placed: integer-precision results without a measured top-1 (the model card's number is the "
                f"fp32 model's; measure with <code>--eval DIR</code>): {h(', '.join(unmeasured_low))}.",
                "warn",
            )
        )
    return Section(
        "speed-accuracy",
        "Speed–accuracy",
        "Each point is one stored result: top-1 (measured on the timed session where the record has it, else the "
        "model card's ImageNet number) against its "
        "speed; colour is the backend, symbol the device, the legend names the precision that ran; the dotted "
        "line is each device's Pareto frontier "
        "(no other result is both faster and more accurate).",
        "".join(body),
        figures,
    )
