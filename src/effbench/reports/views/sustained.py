"""Sustained runs: latency over time per window (median with its CI, p90) with the device's
telemetry (hottest sensor, CPU clock, load) on a second axis, and each run's verdict with its
evidence. Self-contained: reads the sustained summary each record keeps (`extra.scenario`)."""

from __future__ import annotations

from typing import Any

from effbench.reports.common import Figure, Section, axis, base_layout, fmt, h, note, table
from effbench.reports.data import Row

MAX_RUNS = 12  # figures drawn (the newest runs)
# (telemetry key, axis title): the first one a run's windows all carry goes on the second axis
_SECOND_AXIS = (
    ("hottest_c", "hottest sensor (C)"),
    ("cpu_mhz", "CPU clock (MHz)"),
    ("gpu_mhz", "GPU clock (MHz)"),
    ("load1", "load average"),
)


def _summary(r: Row) -> dict[str, Any] | None:
    s = r.rec.extra.get("scenario") or {}
    return s if r.ok and r.scenario == "sustained" and s.get("windows") else None


def _figure(i: int, r: Row, s: dict[str, Any]) -> Figure:
    w = s["windows"]
    x = [round(v["start_s"] + v["seconds"] / 2, 3) for v in w]
    med = [v["median_ms"] for v in w]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "median (95% CI)",
            "x": x,
            "y": med,
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [v["ci95_high"] - v["median_ms"] for v in w],
                "arrayminus": [v["median_ms"] - v["ci95_low"] for v in w],
            },
            "hovertemplate": "window at %{x:.0f} s<br>median %{y:.4g} ms<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "p90",
            "x": x,
            "y": [v["p90_ms"] for v in w],
            "line": {"dash": "dot"},
        },
    ]
    shapes = [
        {"type": "line", "xref": "x", "yref": "paper", "x0": v["start_s"], "x1": v["start_s"], "y0": 0, "y1": 1,
         "line": {"color": "#ddd", "width": 1}}
        for v in w[1:]
    ]  # fmt: skip
    onset = s.get("onset")
    if onset:
        shapes.append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": onset["s"], "x1": onset["s"], "y0": 0, "y1": 1,
             "line": {"color": "#c0392b", "width": 2, "dash": "dash"}}
        )  # fmt: skip
    layout = base_layout(
        xaxis=axis("time since the measurement started (s)"),
        yaxis=axis("latency (ms)"),
        legend={"orientation": "h", "x": 0, "y": -0.25},
        shapes=shapes,
        margin={"l": 70, "r": 70, "t": 20, "b": 70},
    )
    tele = [v.get("telemetry") or {} for v in w]
    for key, title in _SECOND_AXIS:
        if tele and all(key in t for t in tele):
            data.append(
                {"type": "scatter", "mode": "lines+markers", "name": title, "x": x, "y": [t[key] for t in tele],
                 "yaxis": "y2", "line": {"color": "#e67e22", "width": 1.5}, "marker": {"size": 5}}
            )  # fmt: skip
            layout["yaxis2"] = dict(axis(title), overlaying="y", side="right", showgrid=False)
            break
    return Figure(f"fig-sustained-{i}", data, layout, height=380)


def sustained_section(rows: list[Row]) -> Section:
    how = (
        "Sustained runs (<code>--scenario sustained</code>): continuous inference cut into windows; the median of "
        "each window with its 95% CI, the p90, and the device's telemetry on the right axis. The dashed red line "
        "is where the median left the first window's CI for good; a run is <em>throttled</em> when the CI of "
        "last/first lies entirely above 1.05."
    )
    sel = [(r, s) for r in rows for s in [_summary(r)] if s]
    if not sel:
        return Section("sustained", "Sustained", how, note("No sustained runs in these results."), [])
    sel = sel[:MAX_RUNS]
    rows_html, figures, body = [], [], []
    for i, (r, s) in enumerate(sel):
        ratio = s["last_first"]
        onset = s.get("onset")
        rows_html.append(
            [
                f"{r.model} | {r.backend} | {r.device}",
                r.created_at[:16].replace("T", " "),
                f"{len(s['windows'])} x {fmt(s['window_s'])} s",
                f"{ratio['ratio']:.3f} [{ratio['ci95_low']:.3f}-{ratio['ci95_high']:.3f}]",
                f"{onset['direction']} from {onset['s']:.0f} s" if onset else "-",
                ("throttled", "bad") if s["throttled"] else "steady",
                s.get("evidence", ""),
            ]
        )
        f = _figure(i, r, s)
        figures.append(f)
        body.append(f"<h3>{h(r.model)} on {h(r.backend)}, {h(r.device)} ({h(r.created_at[:16])})</h3>{f.div()}")
    head = ["cell", "when", "windows", "last/first [95% CI]", "onset", "verdict", "evidence"]
    return Section("sustained", "Sustained", how, table(head, rows_html) + "".join(body), figures)
