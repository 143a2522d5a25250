"""The gate report as Markdown (PR comments, job summaries), a rich terminal table, or JSON; and a
baseline as a terminal table."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from effbench.gate.baseline import Baseline
from effbench.gate.cells import Cell
from effbench.gate.stats import robust_cv
from effbench.gate.verdict import (
    ACCURACY_REGRESSION,
    FAILED,
    IMPROVEMENT,
    INCONCLUSIVE,
    MISSING,
    NEW,
    NO_CHANGE,
    PARITY_FAILURE,
    REGRESSION,
    CellVerdict,
    Report,
    env_facts,
)

ICONS = {
    REGRESSION: "🔴",
    ACCURACY_REGRESSION: "🔴",
    PARITY_FAILURE: "🔴",
    FAILED: "🔴",
    IMPROVEMENT: "🟢",
    NO_CHANGE: "⚪",
    INCONCLUSIVE: "🟡",
    NEW: "🆕",
    MISSING: "➖",
}
STYLES = {
    REGRESSION: "bold red",
    ACCURACY_REGRESSION: "bold red",
    PARITY_FAILURE: "bold red",
    FAILED: "bold red",
    IMPROVEMENT: "green",
    INCONCLUSIVE: "yellow",
    NEW: "cyan",
    MISSING: "dim",
}
HEADERS = ("cell", "baseline", "current", "ratio [95% CI]", "p", "verdict")


def _num(v: float | None, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.4g} {unit}".rstrip()


def _ratio_text(r: float | None) -> str:
    return "-" if r is None or not math.isfinite(r) else f"{r:.3f}"


def _ratio(c: CellVerdict) -> str:
    if c.ci_low is None or c.ratio is None:
        return _ratio_text(c.ratio)
    return f"{c.ratio:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def rows(report: Report) -> list[tuple[str, ...]]:
    u = report.metric.unit
    return [
        (c.label, _num(c.baseline, u), _num(c.current, u), _ratio(c), _p(c.p_value), c.verdict) for c in report.cells
    ]


def headline(report: Report, fail_on: str = "regression") -> str:
    failing = report.failing(fail_on)
    counts = ", ".join(f"{n} {v}" for v, n in sorted(report.counts().items()))
    if failing:
        return f"❌ {len(failing)} of {len(report.cells)} cells fail ({counts})"
    return f"✅ no regression ({counts or 'no cells'})"


def settings(report: Report) -> str:
    m = report.metric
    better = "higher" if m.higher_is_better else "lower"
    accuracy = f", max top-1 drop {report.max_accuracy_drop:g} points" if any(c.accuracy for c in report.cells) else ""
    return (
        f"metric {m.name} ({m.unit}, {better} is better), threshold {report.threshold:.1%}, "
        f"alpha {report.alpha:g}{accuracy}; baseline {report.baseline}; current {report.current}"
    )


def notes(report: Report) -> list[str]:
    """Why each cell that needs attention got its verdict, and environment warnings."""
    out = [f"{c.label}: {c.verdict}: {c.reason}" for c in report.cells if c.verdict != NO_CHANGE]
    out += [
        f"{c.label}: accuracy: {c.accuracy['reason']}"
        for c in report.cells
        if c.accuracy and c.verdict != ACCURACY_REGRESSION and c.accuracy.get("reason")
    ]
    # one library upgrade touches every cell: say it once, not once per cell
    by_warning: dict[str, list[str]] = {}
    for c in report.cells:
        for w in c.warnings:
            by_warning.setdefault(w, []).append(c.label)
    for w, labels in by_warning.items():
        out.append(f"warning: {labels[0]}: {w}" if len(labels) == 1 else f"warning ({len(labels)} cells): {w}")
    return out


def _geomean_label(n: int) -> str:
    return f"geometric mean over {n} compared cell{'' if n == 1 else 's'}"


def to_markdown(report: Report, fail_on: str = "regression") -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [
        f"### effbench gate: {headline(report, fail_on)}",
        "",
        esc(settings(report)),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for r, c in zip(rows(report), report.cells):
        warn = " ⚠️" if c.warnings else ""
        lines.append(f"| `{esc(r[0])}`{warn} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {ICONS[c.verdict]} {r[5]} |")
    gm, n = report.geomean()
    lines.append(f"| **{_geomean_label(n)}** | | | **{_ratio_text(gm)}** | | |")
    if n_ := notes(report):
        lines += ["", "<details><summary>Notes</summary>", ""]
        lines += [f"- {esc(line)}" for line in n_]
        lines += ["", "</details>"]
    lines += [
        "",
        "_regression: p < alpha and the whole 95% CI of current/baseline beyond the threshold "
        "(see effbench docs/gate.md)_",
        "",
    ]
    return "\n".join(lines)


def print_report(report: Report, console: Console, fail_on: str = "regression") -> None:
    table = Table(title=f"effbench gate: {headline(report, fail_on)}", caption=settings(report))
    for h in HEADERS:
        table.add_column(
            h, justify="left" if h in ("cell", "verdict") else "right", overflow="fold" if h == "cell" else "ellipsis"
        )
    for r, c in zip(rows(report), report.cells):
        table.add_row(r[0] + (" !" if c.warnings else ""), *r[1:5], r[5], style=STYLES.get(c.verdict))
    gm, n = report.geomean()
    table.add_row(_geomean_label(n), "", "", _ratio_text(gm), "", "", style="bold")
    console.print(table)
    for line in notes(report):
        console.print(line, markup=False, highlight=False)


def to_json(report: Report, fail_on: str = "regression") -> str:
    return json.dumps(report.to_dict(fail_on), indent=1)


def _cell_row(c: Cell) -> tuple[str, ...]:
    s = c.summary or {}
    energy = c.energy or {}
    return (
        c.label,
        c.status,
        str(s.get("n", 0)),
        _num(s.get("median"), "ms"),
        _num(s.get("p95"), "ms"),
        f"{robust_cv(c.samples_ms):.1%}" if c.samples_ms else "-",
        _num(c.throughput_per_s),
        _num((c.memory or {}).get("peak_rss_mb")),
        _num(energy.get("joules_per_image")) if energy.get("available", True) else "-",
        "ok" if (c.parity or {}).get("ok") else ("FAIL" if c.parity else "-"),
    )


def print_baseline(b: Baseline, console: Console) -> None:
    table = Table(
        title=f"baseline {b.name} ({b.path})",
        caption=f"created {b.created_at or '?'} from {b.source or '?'}; {len(b.cells)} cells",
    )
    for h in ("cell", "status", "n", "median", "p95", "CV (MAD)", "img/s", "peak MB", "J/img", "parity"):
        table.add_column(
            h, justify="left" if h in ("cell", "status") else "right", overflow="fold" if h == "cell" else "ellipsis"
        )
    for c in b.cells:
        table.add_row(*_cell_row(c), style=None if c.status == "ok" else "red")
    console.print(table)
    fingerprints = {json.dumps(env_facts(c.env), sort_keys=True) for c in b.cells}
    for fp in sorted(fingerprints):
        facts: dict[str, Any] = json.loads(fp)
        if facts:
            console.print(
                "environment: " + ", ".join(f"{k} {v}" for k, v in facts.items()), markup=False, highlight=False
            )
