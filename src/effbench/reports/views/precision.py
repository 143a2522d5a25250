"""Precision: each model's fp32 -> int8 move on one backend and device: the latency ratio (with the
block-bootstrap CI of the gate) and the top-1 drop (with its interval), side by side.

The drop is, in order of preference: paired between the fp32 and the int8 cells when both evaluated
the same images (same dataset hash, per-image outcomes stored); else the int8 record's own paired drop
against its fp32 reference (PyTorch or ONNX Runtime); else unpaired from the two measured top-1s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effbench.reports.common import Figure, Section, axis, backend_colours, base_layout, fmt_ms, h, note, p, table
from effbench.reports.data import Row, as_dict, interval_of, latest_per_cell, num

MIN_SAMPLES_FOR_CI = 50


@dataclass
class PrecisionPair:
    fp32: Row
    int8: Row
    ratio: float | None  # int8 / fp32 median latency
    ratio_ci: tuple[float, float] | None
    drop: float | None  # top-1 points lost by int8
    drop_ci: tuple[float, float] | None
    drop_p: float | None
    drop_basis: str  # how the drop was computed, or why there is none
    int8_macs_share: float | None
    calibration: str  # "dir", "generated", ...
    calibration_warning: str | None

    @property
    def key(self) -> tuple:
        return self.fp32.model, self.fp32.backend, self.fp32.device, self.fp32.scenario, self.fp32.batch


def _ratio(fp32: Row, int8: Row) -> tuple[float | None, tuple[float, float] | None]:
    if not fp32.median or int8.median is None:
        return None, None
    a, b = fp32.samples, int8.samples
    if len(a) >= MIN_SAMPLES_FOR_CI and len(b) >= MIN_SAMPLES_FOR_CI:
        from effbench.gate.stats import compare_samples

        s = compare_samples(a, b)
        return s.ratio, (s.ci_low, s.ci_high)
    return int8.median / fp32.median, None


def _paired_cells(fp32: dict[str, Any], int8: dict[str, Any]) -> Any:
    """The paired table of the two cells' own outcomes, when they evaluated the same images."""
    from effbench.accuracy import metrics

    if not (
        fp32.get("correct")
        and int8.get("correct")
        and fp32.get("dataset_hash")
        and fp32.get("dataset_hash") == int8.get("dataset_hash")
        and fp32.get("images") == int8.get("images")
    ):
        return None
    n = int(fp32["images"])
    try:
        a, b = metrics.unpack_correct(fp32["correct"], n), metrics.unpack_correct(int8["correct"], n)
    except (ValueError, TypeError):
        return None
    return metrics.PairedTable.from_correct(a, b)


def _drop(fp32: Row, int8: Row) -> tuple[float | None, tuple[float, float] | None, float | None, str]:
    from effbench.accuracy import metrics

    fa, ia = fp32.accuracy or {}, int8.accuracy or {}
    table_ = _paired_cells(fa, ia) if fa and ia else None
    if table_ is not None:
        lo, hi = metrics.paired_difference_ci(table_)
        return (
            100 * table_.drop,
            (100 * lo, 100 * hi),
            metrics.mcnemar_p(table_.ref_only, table_.test_only),
            "paired: fp32 cell vs int8 cell, same images",
        )
    if ia and num(ia.get("drop")) is not None:
        ref = (ia.get("reference") or {}).get("runtime", "reference")
        return (
            num(ia["drop"]),
            interval_of(ia.get("drop_ci")),
            num(ia.get("mcnemar_p")),
            f"paired: int8 vs fp32 {ref} on the same images",
        )
    if fa and ia and num(fa.get("images")) and num(ia.get("images")):
        n1, n2 = int(fa["images"]), int(ia["images"])
        k1, k2 = round((num(fa["top1"]) or 0.0) * n1 / 100), round((num(ia["top1"]) or 0.0) * n2 / 100)
        lo, hi = metrics.unpaired_difference_ci(k1, n1, k2, n2)
        basis = "unpaired: different images" if fa.get("dataset_hash") != ia.get("dataset_hash") else "unpaired"
        return 100 * (k1 / n1 - k2 / n2), (100 * lo, 100 * hi), metrics.two_proportion_p(k1, n1, k2, n2), basis
    return None, None, None, "not measured (add --eval DIR)"


def precision_pairs(rows: list[Row]) -> list[PrecisionPair]:
    cells, _ = latest_per_cell([r for r in rows if r.ok and r.scenario != "profile"])
    by_key: dict[tuple, dict[str, Row]] = {}
    for r in cells:
        by_key.setdefault((r.model, r.backend, r.device, r.scenario, r.batch), {})[r.precision] = r
    out = []
    for key in sorted(by_key, key=lambda k: tuple(str(x) for x in k)):
        pair = by_key[key]
        if "fp32" not in pair or "int8" not in pair:
            continue
        fp32, int8 = pair["fp32"], pair["int8"]
        ratio, ratio_ci = _ratio(fp32, int8)
        drop, drop_ci, drop_p, basis = _drop(fp32, int8)
        quant = as_dict(int8.rec.quantization)
        calib = as_dict(quant.get("calibration"))
        out.append(
            PrecisionPair(
                fp32,
                int8,
                ratio,
                ratio_ci,
                drop,
                drop_ci,
                drop_p,
                basis,
                num(quant.get("int8_macs_share")),
                str(calib.get("source") or "?"),
                calib.get("warning"),
            )
        )
    return out


def _ci(ci: tuple[float, float] | None, spec: str) -> str:
    return f"[{format(ci[0], spec)}, {format(ci[1], spec)}]" if ci else ""


def ratio_text(pair: PrecisionPair) -> str:
    return "–" if pair.ratio is None else f"{pair.ratio:.3f} {_ci(pair.ratio_ci, '.3f')}".strip()


def drop_text(pair: PrecisionPair) -> str:
    if pair.drop is None:
        return "–"
    p_text = f" p={pair.drop_p:.2g}" if pair.drop_p is not None else ""
    return f"{pair.drop:+.2f} {_ci(pair.drop_ci, '+.2f')}".strip() + p_text


def macs_text(pair: PrecisionPair) -> str:
    return "–" if pair.int8_macs_share is None else f"{pair.int8_macs_share * 100:.3g} %"


def top1_move(pair: PrecisionPair) -> str:
    return f"{pair.fp32.top1_text} → {pair.int8.top1_text}"


def _figure(pairs: list[PrecisionPair]) -> Figure:
    shown = [x for x in pairs if x.ratio is not None and x.drop is not None]
    colours = backend_colours(x.fp32.backend for x in shown)
    data = []
    for backend in sorted(colours):
        grp = [x for x in shown if x.fp32.backend == backend]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": p(backend),
                "meta": {"role": "points"},
                "x": [x.ratio for x in grp],
                "y": [x.drop for x in grp],
                "text": [p(x.fp32.model) for x in grp],
                "textposition": "top center",
                "textfont": {"size": 10, "color": "#555"},
                "marker": {"color": colours[backend], "size": 11},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "color": colours[backend],
                    "thickness": 1,
                    "array": [(x.ratio_ci[1] - (x.ratio or 0.0)) if x.ratio_ci else 0 for x in grp],
                    "arrayminus": [((x.ratio or 0.0) - x.ratio_ci[0]) if x.ratio_ci else 0 for x in grp],
                },
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "color": colours[backend],
                    "thickness": 1,
                    "array": [(x.drop_ci[1] - (x.drop or 0.0)) if x.drop_ci else 0 for x in grp],
                    "arrayminus": [((x.drop or 0.0) - x.drop_ci[0]) if x.drop_ci else 0 for x in grp],
                },
                "hovertext": [
                    f"<b>{p(x.fp32.model)}</b> · {p(x.fp32.backend)} · {p(x.fp32.device)}<br>"
                    f"latency {fmt_ms(x.fp32.median)} → {fmt_ms(x.int8.median)} ms (×{ratio_text(x)})<br>"
                    f"top-1 {p(top1_move(x))}<br>drop {p(drop_text(x))} points ({p(x.drop_basis)})"
                    for x in grp
                ],
                "hoverinfo": "text",
                "cliponaxis": False,
            }
        )
    xs = [x.ratio for x in shown]
    layout = base_layout(
        xaxis=axis("int8 / fp32 median latency (below 1: int8 faster)", values=xs),
        yaxis=axis("top-1 lost by int8 (points)"),
        shapes=[
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": 1,
                "x1": 1,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#999", "dash": "dot", "width": 1},
            },
            {
                "type": "line",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": 0,
                "y1": 0,
                "line": {"color": "#999", "dash": "dot", "width": 1},
            },
        ],
    )
    return Figure("fig-precision", data, layout, height=430)


def precision_section(rows: list[Row]) -> Section:
    pairs = precision_pairs(rows)
    how = (
        "Each model's move from fp32 to int8 on one backend and device: how much latency int8 saves "
        "(ratio of medians with its 95% CI) and how much top-1 it costs (points, with its 95% interval)."
    )
    if not pairs:
        return Section(
            "precision",
            "Precision: fp32 → int8",
            how,
            note(
                "No model has both an fp32 and an int8 result on the same backend and device: run "
                "<code>bench sweep</code> with <code>precisions: [fp32, int8]</code> (add <code>eval: DIR</code> for "
                "the accuracy side)."
            ),
        )
    body = []
    fig = None
    if any(x.ratio is not None and x.drop is not None for x in pairs):
        fig = _figure(pairs)
        body.append(
            '<p class="caption">Lower left is better: faster and no accuracy lost. Whiskers: the '
            "latency ratio's block-bootstrap 95% CI and the drop's 95% interval.</p>" + fig.div()
        )
    headers = [
        "model",
        "backend",
        "device",
        "batch",
        "fp32 ms",
        "int8 ms",
        "int8/fp32 [95% CI]",
        "top-1 fp32 → int8",
        "drop, points [95% CI]",
        "drop from",
        "int8 MACs",
        "calibration",
    ]
    cells = []
    for x in pairs:
        calib = x.calibration + (" ⚠" if x.calibration_warning else "")
        cells.append(
            [
                x.fp32.model,
                x.fp32.backend,
                x.fp32.device,
                x.fp32.batch,
                fmt_ms(x.fp32.median),
                fmt_ms(x.int8.median),
                ratio_text(x),
                top1_move(x),
                drop_text(x),
                x.drop_basis,
                macs_text(x),
                calib,
            ]
        )
    body.append(table(headers, cells))
    warned = sorted({x.fp32.model for x in pairs if x.calibration_warning})
    if warned:
        body.append(
            note(
                f"Calibrated on generated images (no <code>--calib</code>): {h(', '.join(warned))}. Their "
                "int8 latency is representative, their int8 accuracy is not.",
                "warn",
            )
        )
    return Section("precision", "Precision: fp32 → int8", how, "".join(body), [fig] if fig else [])


def precision_markdown(rows: list[Row]) -> list[str]:
    """The Markdown summary's fp32 -> int8 table (empty when there are no pairs)."""
    from effbench.reports.markdown import md_escape

    pairs = precision_pairs(rows)
    if not pairs:
        return []
    lines = [
        "",
        "#### fp32 → int8",
        "",
        "| model | backend | device | int8/fp32 latency [95% CI] | top-1 fp32 → int8 | drop, points [95% CI] | "
        "int8 MACs |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for x in pairs:
        warn = " ⚠ generated calibration" if x.calibration_warning else ""
        lines.append(
            f"| {md_escape(x.fp32.model)} | {md_escape(x.fp32.backend)} | {md_escape(x.fp32.device)} | "
            f"{md_escape(ratio_text(x))} | {md_escape(top1_move(x))}{warn} | {md_escape(drop_text(x))} | "
            f"{macs_text(x)} |"
        )
    return lines
