"""All results: one row per cell with its statistics, parity and notes."""

from __future__ import annotations

from effbench.reports.common import Section, fmt, fmt_ms, h
from effbench.reports.data import Row, latest_per_cell, num


def date_text(ts: str) -> str:
    return ts[:16].replace("T", " ") if ts else "?"


# the columns a cell's row starts with, in the HTML table and the Markdown summary alike
CELL_COLUMNS = ["model", "backend", "device", "batch", "precision", "scenario", "status", "median ms", "95% CI ms"]
RESULT_COLUMNS = [*CELL_COLUMNS, "p99 ms", "img/s", "top-1 %", "efficiency %", "parity"]


def results_section(rows: list[Row]) -> Section:
    cells, older = latest_per_cell([r for r in rows if r.scenario != "profile"])
    body = []
    for r in cells:
        ci = f"{fmt_ms(r.ci_low)}–{fmt_ms(r.ci_high)}" if r.ci_low is not None and r.ci_high is not None else "–"
        notes = ([r.error] if r.error else []) + r.warnings
        status = f'<span class="{"" if r.ok else "status-bad"}">{h(r.status)}</span>'
        prec = r.precision if r.precision_ran in ("", r.precision) else f"{r.precision} → {r.precision_ran}"
        mem = r.rec.memory.to_dict() if r.rec.memory else {}
        cells_html = [
            (h(r.model), "name"),
            (h(r.backend), ""),
            (h(r.device), ""),
            (h(r.batch), "num"),
            (h(prec), ""),
            (h(r.scenario), ""),
            (status, ""),
            (fmt_ms(r.median), "num"),
            (ci, "num"),
            (fmt_ms(r.p99), "num"),
            (fmt(r.throughput, ".4g"), "num"),
            (h(r.top1_text), "num"),
            (fmt(r.efficiency * 100 if r.efficiency is not None else None, ".3g"), "num"),
            (h(r.parity_text), "nowrap"),
        ]
        body.append(
            '<tr class="has-notes">'
            + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for v, c in cells_html)
            + "</tr>"
        )
        rss = num(mem.get("peak_rss_mb"))
        meta = (
            f"run {date_text(r.created_at)} UTC"
            + (f" · peak RSS {rss:.4g} MB" if rss is not None else "")
            + (f" · tag {r.tag}" if r.tag else "")
        )
        body.append(
            f'<tr class="notes"><td colspan="{len(RESULT_COLUMNS)}">{h(meta)}'
            + (f' · <span class="{"" if r.ok else "status-bad"}">{h("; ".join(notes))}</span>' if notes else "")
            + "</td></tr>"
        )
    head = "".join(f"<th>{h(c)}</th>" for c in RESULT_COLUMNS)
    tbl = (
        f'<div class="table-wrap"><table class="data results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    cap = (
        f'<p class="caption">{len(cells)} cell(s): the newest ok result of each configuration, else its newest '
        f"attempt{f'; {older} older result(s) of the same cells are in the plots above but not here' if older else ''}."
        " Under each row: when it ran, its peak memory, its tag, and its errors or warnings. "
        "<code>bench report --format md</code> prints this "
        "table for a pull request, <code>--format csv</code> every result.</p>"
    )
    return Section(
        "results",
        "All results",
        "One row per cell (model, backend, device, batch, precision, "
        "scenario) with its statistics, parity against the PyTorch reference and notes.",
        cap + tbl,
        [],
    )
