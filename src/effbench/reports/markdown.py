"""Markdown summary (for a pull-request comment) and the flat CSV export."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from effbench.harness.result import Result
from effbench.reports.common import fmt, fmt_ms
from effbench.reports.data import Row, latest_per_cell, to_rows
from effbench.reports.views.claims import claims_markdown
from effbench.reports.views.results import CELL_COLUMNS

MD_COLUMNS = [*CELL_COLUMNS, "img/s", "top-1 %", "efficiency", "parity"]
REASON_CHARS = 120


def md_escape(value: Any) -> str:
    """Text for a Markdown table cell: no HTML, no table breaks, no links or code spans from user text."""
    s = " ".join(str("" if value is None else value).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|`*[]":
        s = s.replace(ch, "\\" + ch)
    return s


def _status(r: Row) -> str:
    if r.ok:
        return "ok"
    reason = r.error or "no reason recorded"
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 1] + "…"
    return f"**{md_escape(r.status)}**: {md_escape(reason)}"


def _parity(r: Row) -> str:
    text = r.parity_text
    if text == "not checked":
        return "–"
    return "✅ ok" if text == "ok" else f"❌ {md_escape(text)}"


def render_markdown(records: Iterable[Result | Mapping[str, Any]], filters: str = "") -> str:
    rows = to_rows(records)
    cells, older = latest_per_cell([r for r in rows if r.scenario != "profile"])
    ok = sum(r.ok for r in cells)
    dates = sorted(r.created_at for r in rows if r.created_at)
    span = f"{dates[0][:16].replace('T', ' ')} – {dates[-1][:16].replace('T', ' ')} UTC" if dates else ""
    devices = ", ".join(md_escape(d) for d in sorted({r.device for r in cells}))
    lines = [
        f"### effbench: {len(cells)} cell(s), {ok} ok"
        + (f", {len(cells) - ok} failed or skipped" if ok < len(cells) else ""),
        "",
        f"devices: {devices}"
        + (f" · {span}" if span else "")
        + (f" · filters: {md_escape(filters)}" if filters else ""),
        "",
        "| " + " | ".join(MD_COLUMNS) + " |",
        "|"
        + "|".join(
            "---:" if c in ("batch", "median ms", "95% CI ms", "img/s", "efficiency") else "---" for c in MD_COLUMNS
        )
        + "|",
    ]
    for r in cells:
        ci = f"{fmt_ms(r.ci_low)}–{fmt_ms(r.ci_high)}" if r.ci_low is not None and r.ci_high is not None else "–"
        prec = r.precision if r.precision_ran in ("", r.precision) else f"{r.precision}→{r.precision_ran}"
        vals = [
            md_escape(r.model),
            md_escape(r.backend),
            md_escape(r.device),
            md_escape(r.batch),
            md_escape(prec),
            md_escape(r.scenario),
            _status(r),
            fmt_ms(r.median) if r.ok else "–",
            ci if r.ok else "–",
            fmt(r.throughput, ".4g") if r.ok else "–",
            md_escape(r.top1_text),
            fmt(r.efficiency * 100, ".3g") + " %" if r.efficiency is not None else "–",
            _parity(r),
        ]
        lines.append("| " + " | ".join(vals) + " |")
    from effbench.reports.views.precision import precision_markdown

    lines += precision_markdown(rows)
    lines.append("")
    foot = [
        "median and 95% CI of the raw samples; top-1 measured on the timed session [Wilson 95% interval], or "
        "a model card's (card); efficiency = ideal / measured latency; parity against the PyTorch reference."
    ]
    if older:
        foot.append(f"{older} older result(s) of the same cells not shown.")
    lines.append("<sub>" + " ".join(foot) + "</sub>")
    lines.extend(claims_markdown(rows))
    return "\n".join(lines) + "\n"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defuse(value: Any) -> Any:
    """Strings a spreadsheet would run as a formula get a leading apostrophe (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render_csv(records: Iterable[Result | Mapping[str, Any]]) -> str:
    """Every result (not only the newest per cell) as one flat row, with top-1 and family added."""
    from effbench.harness.store import results_frame

    rows = to_rows(records)
    df = results_frame(r.rec for r in rows)
    df["top1"] = [r.top1 for r in rows]
    df["top1_source"] = [r.top1_source for r in rows]
    df["family"] = [r.family for r in rows]
    df["energy_reason"] = [r.energy_reason or None for r in rows]
    df["samples"] = [len(r.samples) for r in rows]
    for col in df.columns:
        if any(isinstance(v, str) for v in df[col]):
            df[col] = df[col].map(_defuse)
    return df.to_csv(index=False)
