"""Latency against input resolution (`--input-size 160,224,288`, a sweep's `resolutions:`): one
line per model, backend, device, batch and precision, the newest result at each size, its median
with the 95% CI; and the dynamic-shape penalty where `--dynamic` measured one. Self-contained: reads
the size each record's configuration asked for and `extra.dynamic`."""

from __future__ import annotations

from typing import Any

from effbench.reports.common import Figure, Section, axis, base_layout, fmt_ms, note, table
from effbench.reports.data import Row


def _size(r: Row) -> int | None:
    size = r.rec.config.get("input_size")
    return int(size) if isinstance(size, (int, float)) else None


def series(rows: list[Row]) -> dict[str, dict[int, Row]]:
    """label -> size -> the newest ok latency-like result at that size (lines with two sizes or more)."""
    out: dict[str, dict[int, Row]] = {}
    for r in sorted(rows, key=lambda r: r.created_at):
        size = _size(r)
        if not r.ok or size is None or r.median is None:
            continue
        label = f"{r.model} | {r.backend} | {r.device} | b{r.batch} | {r.precision} | {r.scenario}"
        out.setdefault(label, {})[size] = r
    return {k: v for k, v in out.items() if len(v) >= 2}


def _dynamic_table(rows: list[Row]) -> str:
    """The dynamic-shape penalty (`--dynamic`): per static cell, the dynamic artifact's steady latency
    at the same shape, their ratio and the first run after a shape switch."""
    body = []
    for r in rows:
        d = r.rec.extra.get("dynamic")
        if not r.ok or not d:
            continue
        body.append(
            [
                f"{r.model} | {r.backend} | {r.device} | {r.precision}",
                "x".join(map(str, d.get("shape") or [])),
                fmt_ms(d.get("static_median_ms")),
                fmt_ms(d.get("steady_median_ms")),
                f"x{d['penalty']:.2f}" if d.get("penalty") else "–",
                fmt_ms(d.get("first_after_switch_ms")),
            ]
        )
    if not body:
        return ""
    head = [
        "cell",
        "shape",
        "static median (ms)",
        "dynamic median (ms)",
        "dynamic penalty",
        "first run after a switch (ms)",
    ]
    return "<h3>Dynamic shapes</h3>" + table(head, body)


def resolution_section(rows: list[Row]) -> Section:
    how = (
        "Median latency against the input resolution (<code>--input-size 160,224,288</code> or a sweep's "
        "<code>resolutions:</code>), with its 95% CI: how each model's cost grows with the pixels it is given."
    )
    lines = series(rows)
    dynamic = _dynamic_table(rows)
    if not lines:
        body = note("No model measured at two resolutions or more.") + dynamic
        return Section("resolution", "Resolution", how, body, [])
    data: list[dict[str, Any]] = []
    body_rows = []
    for label, by_size in sorted(lines.items()):
        sizes = sorted(by_size)
        pts = [by_size[s] for s in sizes]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": sizes,
                "y": [p.median for p in pts],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [(p.ci_high or p.median) - p.median for p in pts],  # type: ignore[operator]
                    "arrayminus": [p.median - (p.ci_low or p.median) for p in pts],  # type: ignore[operator]
                },
                "hovertemplate": "%{x} px<br>median %{y:.4g} ms<extra>" + label + "</extra>",
            }
        )
        first = pts[0].median or 1.0
        body_rows.append(
            [label, *(f"{s} px: {fmt_ms(p.median)} ms (x{(p.median or 0) / first:.2f})" for s, p in zip(sizes, pts))]
        )
    layout = base_layout(
        xaxis=axis("input resolution (px, square)"),
        yaxis=axis("median latency (ms)", log=True, values=[d for t in data for d in t["y"]]),
        legend={"orientation": "h", "x": 0, "y": -0.25},
    )
    fig = Figure("fig-resolution", data, layout, height=420)
    width = max(len(r) for r in body_rows)
    head = ["cell", *(f"size {i + 1}" for i in range(width - 1))]
    body_rows = [r + [""] * (width - len(r)) for r in body_rows]
    return Section("resolution", "Resolution", how, fig.div() + table(head, body_rows) + dynamic, [fig])
