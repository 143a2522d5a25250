"""Predicted against measured: for every fp32, batch-1 latency result whose backend and device have an
installed predictor (bench predictor build / import), the prediction beside the measurement; a result
outside the predictor's own error band is flagged: a runtime regression, or a fusion the predictor
does not know. Predictions use only artifacts already exported on this machine (nothing is built)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effbench.reports.common import Figure, Section, axis, backend_colours, base_layout, fmt_ms, h, note, p, table
from effbench.reports.data import Row, latest_per_cell


@dataclass
class Predicted:
    row: Row
    predicted_ms: float
    low_ms: float
    high_ms: float
    predictor: str
    validation: str

    @property
    def error(self) -> float:
        return self.predicted_ms / (self.row.median or self.predicted_ms) - 1  # rows with a median only

    @property
    def outside(self) -> bool:
        return not (self.low_ms <= (self.row.median or 0.0) <= self.high_ms)


def _installed() -> dict[tuple[str, str], Any]:
    from effbench.errors import UsageError
    from effbench.predict.predictor import Predictor, predictors_dir

    out = {}
    folder = predictors_dir()
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            pr = Predictor.read(f)
        except UsageError:
            continue
        out[(pr.backend, pr.device)] = pr
    return out


def predictions(rows: list[Row]) -> tuple[list[Predicted], list[str]]:
    """The predictions, and why the results that have a predictor got none."""
    predictors = _installed()
    if not predictors:
        return [], []
    from effbench.export.cache import NotCached, cached_only
    from effbench.predict.build import zoo_model

    cells, _ = latest_per_cell([r for r in rows if r.ok and r.scenario == "latency" and r.median])
    out, skipped = [], []
    models: dict[tuple, Any] = {}
    for r in cells:
        pr = predictors.get((r.backend, r.device))
        if pr is None or r.batch != 1 or r.precision != "fp32":
            continue
        cpu = r.rec.env.get("cpu_model")
        if cpu and cpu != pr.data["identity"].get("cpu"):
            skipped.append(
                f"{r.model} on {r.backend}/{r.device}: measured on a {cpu}, the predictor was built on a "
                f"{pr.data['identity'].get('cpu')}"
            )
            continue
        config = r.rec.config
        if config.get("threads") != pr.data["identity"].get("threads"):
            skipped.append(
                f"{r.model} on {r.backend}/{r.device}: measured with {config.get('threads') or 'default'} "
                f"thread(s), the predictor is for {pr.data['identity'].get('threads') or 'default'}"
            )
            continue
        key = (config.get("model") or r.model, config.get("input_size"))
        try:
            if key not in models:
                with cached_only():
                    models[key] = zoo_model(*key)
        except NotCached:
            skipped.append(f"{r.model}: its ONNX graph is not in this machine's artifact cache")
            continue
        except Exception as e:
            skipped.append(f"{r.model}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            continue
        pred = pr.predict(models[key].kernels)
        refusal = pred.refusal(r.model, pr.id)
        if refusal:  # no number rather than a made-up one
            skipped.append(refusal)
            continue
        out.append(Predicted(r, pred.ms, pred.low_ns / 1e6, pred.high_ns / 1e6, pr.id, pr.accuracy_line()))
    return out, skipped


def _figure(items: list[Predicted]) -> Figure:
    colours = backend_colours(x.row.backend for x in items)
    data = []
    for backend in sorted(colours):
        grp = [x for x in items if x.row.backend == backend]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": p(backend),
                "meta": {"role": "points"},
                "x": [x.row.median for x in grp],
                "y": [x.predicted_ms for x in grp],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "color": colours[backend],
                    "thickness": 1,
                    "array": [x.high_ms - x.predicted_ms for x in grp],
                    "arrayminus": [x.predicted_ms - x.low_ms for x in grp],
                },
                "marker": {
                    "color": colours[backend],
                    "size": 10,
                    "symbol": ["x" if x.outside else "circle" for x in grp],
                },
                "hovertext": [
                    f"<b>{p(x.row.model)}</b> · {p(x.row.backend)} · {p(x.row.device)}<br>measured "
                    f"{fmt_ms(x.row.median)} ms, predicted {fmt_ms(x.predicted_ms)} ms ({x.error:+.1%})"
                    for x in grp
                ],
                "hoverinfo": "text",
            }
        )
    values = [v for x in items for v in (x.row.median or x.predicted_ms, x.predicted_ms)]
    lo, hi = min(values) * 0.9, max(values) * 1.1
    layout = base_layout(
        xaxis=axis("measured median latency (ms)", log=True, values=values),
        yaxis=axis("predicted latency (ms)", log=True, values=values),
        shapes=[{"type": "line", "x0": lo, "x1": hi, "y0": lo, "y1": hi, "line": {"color": "#999", "dash": "dot"}}],
    )
    return Figure("fig-prediction", data, layout, height=430)


def prediction_section(rows: list[Row]) -> Section:
    how = (
        "Each fp32, batch-1 latency result whose backend and device have a latency predictor, beside what the "
        "predictor expected (90% interval). A result outside its interval is flagged: a runtime regression, or a "
        "fusion the predictor does not know."
    )
    items, skipped = predictions(rows)
    if not items:
        msg = (
            "No result has a predictor: build one with <code>bench predictor build --backend openvino --device "
            "cpu</code> (or import a teammate's with <code>bench predictor import FILE</code>)."
        )
        if skipped:
            msg += " Not predicted: " + h("; ".join(skipped[:5]))
        return Section("prediction", "Predicted vs measured", how, note(msg))
    fig = _figure(items)
    cells = [
        [
            x.row.model,
            x.row.backend,
            x.row.device,
            fmt_ms(x.row.median),
            fmt_ms(x.predicted_ms),
            f"{fmt_ms(x.low_ms)}–{fmt_ms(x.high_ms)}",
            f"{x.error:+.1%}",
            "⚠ outside the band" if x.outside else "within",
        ]
        for x in items
    ]
    body = [
        fig.div(),
        table(["model", "backend", "device", "measured ms", "predicted ms", "90% interval", "error", "vs band"], cells),
    ]
    flagged = [x for x in items if x.outside]
    if flagged:
        body.append(
            note(
                "Outside the predictor's band: "
                + h(", ".join(f"{x.row.model} ({x.row.backend}, {x.error:+.0%})" for x in flagged))
                + ". A runtime regression, or kernels the predictor's fusion rules do not know.",
                "warn",
            )
        )
    for pid in sorted({x.predictor for x in items}):
        body.append(f'<p class="caption">{h(pid)}: {h(next(x.validation for x in items if x.predictor == pid))}</p>')
    if skipped:
        body.append(note("Not predicted: " + h("; ".join(skipped[:8]))))
    return Section("prediction", "Predicted vs measured", how, "".join(body), [fig])
