"""Serving under a latency bound (`bench max-qps`): each search's curve, p99 against offered QPS,
with the bound drawn and the highest passing rate marked, and a table of the answers.
Self-contained: reads the curve each record keeps (`extra.max_qps`)."""

from __future__ import annotations

from typing import Any

from effbench.reports.common import Figure, Section, axis, base_layout, fmt, h, note, table
from effbench.reports.data import Row

MAX_RUNS = 12  # figures drawn (the newest searches)


def _summary(r: Row) -> dict[str, Any] | None:
    s = r.rec.extra.get("max_qps") or {}
    return s if s.get("curve") else None


def _figure(i: int, s: dict[str, Any]) -> Figure:
    curve = [c for c in s["curve"] if c.get("p99_ms") is not None]
    xs = [c["qps"] for c in curve]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "p99 (LoadGen Server)",
            "x": xs,
            "y": [c["p99_ms"] for c in curve],
            "marker": {"size": 9, "color": ["#27ae60" if c["passed"] else "#c0392b" for c in curve]},
            "text": ["passes" if c["passed"] else c["reason"] for c in curve],
            "hovertemplate": "%{x:.4g} QPS<br>p99 %{y:.4g} ms<br>%{text}<extra></extra>",
        }
    ]
    shapes = [
        {"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": s["bound_ms"], "y1": s["bound_ms"],
         "line": {"color": "#7f8c8d", "dash": "dash"}}
    ]  # fmt: skip
    if s.get("max_qps"):
        shapes.append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": s["max_qps"], "x1": s["max_qps"], "y0": 0, "y1": 1,
             "line": {"color": "#27ae60", "width": 2}}
        )  # fmt: skip
    layout = base_layout(
        xaxis=axis("offered load (queries/s)"),
        yaxis=axis("p99 latency (ms)", log=True, values=[c["p99_ms"] for c in curve] + [s["bound_ms"]]),
        shapes=shapes,
        showlegend=False,
        margin={"l": 70, "r": 30, "t": 20, "b": 60},
    )
    return Figure(f"fig-max-qps-{i}", data, layout, height=340)


def max_qps_section(rows: list[Row]) -> Section:
    how = (
        "<code>bench max-qps</code>: MLPerf LoadGen Server runs at rising and falling offered loads, bracketing the "
        "highest rate whose run is VALID (early stopping included) with its p99 under the bound (dashed line). "
        "Green points pass, red ones fail; the green line is the answer."
    )
    sel = [(r, s) for r in rows for s in [_summary(r)] if s][:MAX_RUNS]
    if not sel:
        return Section("max-qps", "Serving under a bound", how, note("No max-qps searches in these results."), [])
    rows_html, figures, body = [], [], []
    for i, (r, s) in enumerate(sel):
        rows_html.append(
            [
                f"{r.model} | {r.backend} | {r.device}",
                r.created_at[:16].replace("T", " "),
                f"{fmt(s['bound_ms'])} ms",
                fmt(s["max_qps"]) if s.get("max_qps") else ("none passed", "bad"),
                str(len(s["curve"])),
                s.get("stopped", ""),
            ]
        )
        f = _figure(i, s)
        figures.append(f)
        body.append(f"<h3>{h(r.model)} on {h(r.backend)}, {h(r.device)} ({h(r.created_at[:16])})</h3>{f.div()}")
    head = ["cell", "when", "p99 bound", "highest QPS", "probes", "stopped"]
    return Section("max-qps", "Serving under a bound", how, table(head, rows_html) + "".join(body), figures)
