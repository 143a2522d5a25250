"""Backend matrix: models x backends, median latency and speed-up against a reference backend."""

from __future__ import annotations

import math

from effbench.errors import UsageError
from effbench.reports.common import Figure, Section, base_layout, fmt_ms, h, p
from effbench.reports.data import Row

REASON_CHARS = 34  # of a failure reason shown inside a heatmap cell (the hover and table have all of it)


def reference_backend(rows: list[Row], requested: str | None) -> str | None:
    backends = sorted({r.backend for r in rows})
    if not backends:
        return None
    if requested:
        if requested in backends:
            return requested
        try:
            from effbench.backends.registry import get_backend

            canonical = get_backend(requested).name
        except Exception:
            canonical = None
        if canonical in backends:
            return canonical
        raise UsageError(
            f"--reference-backend {requested!r} has no results in this report (backends here: {', '.join(backends)})"
        )
    return "torch" if "torch" in backends else backends[0]


def _row_key(r: Row) -> str:
    parts = [r.model]
    if r.precision != "fp32":
        parts.append(r.precision)
    if r.batch != 1:
        parts.append(f"batch {r.batch}")
    if r.scenario != "latency":
        parts.append(r.scenario)
    return " · ".join(parts)


def build_matrix(rows: list[Row]) -> tuple[list[str], list[str], dict[tuple[str, str], Row]]:
    """(row labels, column labels, (row, col) -> newest ok result, else newest result)."""
    rows = [r for r in rows if r.scenario != "profile"]
    multi_dev = len({r.device for r in rows}) > 1
    col = (lambda r: f"{r.backend} @ {r.device}") if multi_dev else (lambda r: r.backend)
    cells: dict[tuple[str, str], Row] = {}
    for r in rows:  # newest first
        k = (_row_key(r), col(r))
        have = cells.get(k)
        if have is None or (not have.ok and r.ok):
            cells[k] = r
    row_labels = sorted({k[0] for k in cells})
    col_labels = sorted({k[1] for k in cells})
    return row_labels, col_labels, cells


def _reason(r: Row) -> str:
    return f"{r.status}: {r.error or 'no reason recorded'}"


def matrix_section(rows: list[Row], requested_ref: str | None = None) -> Section:
    ref = reference_backend([r for r in rows if r.scenario != "profile"], requested_ref)
    row_labels, col_labels, cells = build_matrix(rows)
    multi_dev = any(" @ " in c for c in col_labels)
    how = (
        "Rows are models (with precision, batch and scenario when not fp32, 1, latency), columns backends; the "
        "first map colours median latency, the second the speed-up against the reference backend "
        f"<b>{h(ref)}</b> (above 1× is faster). Failed or skipped cells show their reason."
    )

    def ref_of(row_label: str, col_label: str) -> Row | None:
        dev = col_label.split(" @ ", 1)[1] if multi_dev else None
        key = (row_label, f"{ref} @ {dev}" if multi_dev else str(ref))
        r = cells.get(key)
        return r if r is not None and r.ok and r.median else None

    z_lat: list[list[float | None]] = []
    z_sp: list[list[float | None]] = []
    txt_lat: list[list[str]] = []
    txt_sp: list[list[str]] = []
    hov: list[list[str]] = []
    for rl in row_labels:
        zl: list[float | None] = []
        zs: list[float | None] = []
        tl: list[str] = []
        ts: list[str] = []
        hv: list[str] = []
        for cl in col_labels:
            r = cells.get((rl, cl))
            if r is None:
                zl.append(None)
                zs.append(None)
                tl.append("not run")
                ts.append("not run")
                hv.append(f"<b>{p(rl)}</b> · {p(cl)}<br>no result")
                continue
            if not r.ok or r.median is None:
                reason = _reason(r)
                short = reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"
                zl.append(None)
                zs.append(None)
                tl.append(p(short))
                ts.append(p(short))
                hv.append(f"<b>{p(rl)}</b> · {p(cl)}<br>{p(r.status).upper()}<br>{p(r.error or 'no reason recorded')}")
                continue
            base = ref_of(rl, cl)
            sp = (base.median or 0.0) / r.median if base else None
            zl.append(math.log10(r.median))
            zs.append(math.log2(sp) if sp else None)
            tl.append(f"{fmt_ms(r.median)} ms")
            is_ref = base is r
            ts.append("1× (reference)" if is_ref else (f"{sp:.2f}×" if sp else f"no {p(ref)} result"))
            ci = f"{fmt_ms(r.ci_low)}–{fmt_ms(r.ci_high)} ms" if r.ci_low is not None else "–"
            hv.append(
                f"<b>{p(rl)}</b> · {p(cl)}<br>median {fmt_ms(r.median)} ms (95% CI {ci})<br>"
                + (f"speed-up vs {p(ref)}: {sp:.3g}×" if sp else f"no {p(ref)} result in this row")
                + f"<br>parity: {p(r.parity_text)}<br>run {p(r.created_at)}"
            )
        z_lat.append(zl)
        z_sp.append(zs)
        txt_lat.append(tl)
        txt_sp.append(ts)
        hov.append(hv)

    y = [p(r) for r in row_labels]
    x = [p(c) for c in col_labels]
    height = max(260, 120 + 46 * len(row_labels))
    lat_vals = [v for row in z_lat for v in row if v is not None]
    figures = []
    if lat_vals:
        lo, hi = min(lat_vals), max(lat_vals)
        ticks = [t for t in range(math.floor(lo), math.ceil(hi) + 1)]
        tickvals = sorted({v for t in ticks for v in (t, t + math.log10(2), t + math.log10(5))})
        figures.append(
            Figure(
                "fig-matrix-latency",
                [
                    {
                        "type": "heatmap",
                        "z": z_lat,
                        "x": x,
                        "y": y,
                        "text": txt_lat,
                        "texttemplate": "%{text}",
                        "textfont": {"size": 12},
                        "customdata": hov,
                        "hovertemplate": "%{customdata}<extra></extra>",
                        "hoverongaps": True,
                        "colorscale": "Viridis",
                        "reversescale": True,
                        "zmin": lo,
                        "zmax": hi if hi > lo else lo + 1,
                        "colorbar": {
                            "title": {"text": "median ms", "side": "right"},
                            "tickvals": tickvals,
                            "ticktext": [fmt_ms(10**v) for v in tickvals],
                        },
                        "xgap": 2,
                        "ygap": 2,
                        "meta": {"role": "latency"},
                    }
                ],
                base_layout(
                    xaxis={"side": "top", "title": {"text": ""}},
                    yaxis={"autorange": "reversed", "automargin": True},
                    plot_bgcolor="#f3f3f3",
                    margin={"l": 20, "r": 20, "t": 50, "b": 20},
                ),
                height=height,
            )
        )
        sp_vals = [abs(v) for row in z_sp for v in row if v is not None]
        m = max(sp_vals + [1.0])
        sp_ticks = [v for v in range(-math.ceil(m), math.ceil(m) + 1)]
        figures.append(
            Figure(
                "fig-matrix-speedup",
                [
                    {
                        "type": "heatmap",
                        "z": z_sp,
                        "x": x,
                        "y": y,
                        "text": txt_sp,
                        "texttemplate": "%{text}",
                        "textfont": {"size": 12},
                        "customdata": hov,
                        "hovertemplate": "%{customdata}<extra></extra>",
                        "hoverongaps": True,
                        "colorscale": "RdBu",
                        "reversescale": True,
                        "zmid": 0,
                        "zmin": -m,
                        "zmax": m,
                        "colorbar": {
                            "title": {"text": f"speed-up vs {p(ref)}", "side": "right"},
                            "tickvals": sp_ticks,
                            "ticktext": [f"{2**v:g}×" for v in sp_ticks],
                        },
                        "xgap": 2,
                        "ygap": 2,
                        "meta": {"role": "speedup"},
                    }
                ],
                base_layout(
                    xaxis={"side": "top", "title": {"text": ""}},
                    yaxis={"autorange": "reversed", "automargin": True},
                    plot_bgcolor="#f3f3f3",
                    margin={"l": 20, "r": 20, "t": 50, "b": 20},
                ),
                height=height,
            )
        )

    # the same matrix as a table: readable without hovering, and every reason in full
    trows = []
    for rl in row_labels:
        tr = [f'<th scope="row">{h(rl)}</th>']
        for cl in col_labels:
            r = cells.get((rl, cl))
            if r is None:
                tr.append('<td class="muted">not run</td>')
            elif not r.ok or r.median is None:
                tr.append(
                    f'<td class="bad" title="{h(_reason(r))}"><b>{h(r.status)}</b>: '
                    f"{h(r.error or 'no reason recorded')}</td>"
                )
            else:
                base = ref_of(rl, cl)
                speedup = f"{(base.median or 0.0) / r.median:.2f}×" if base else "–"
                par = (
                    ""
                    if r.parity_text in ("ok", "not checked")
                    else f' <span class="bad">parity {h(r.parity_text)}</span>'
                )
                tr.append(f'<td>{fmt_ms(r.median)} ms <span class="muted">({h(speedup)})</span>{par}</td>')
        trows.append("<tr>" + "".join(tr) + "</tr>")
    head = "<th>model</th>" + "".join(f"<th>{h(c)}</th>" for c in col_labels)
    tbl = (
        f'<div class="table-wrap"><table class="data matrix"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(trows)}</tbody></table></div>"
    )
    body = ""
    if figures:
        body += "<h3>Median latency</h3>" + figures[0].div()
        body += f"<h3>Speed-up against {h(ref)}</h3>" + figures[1].div()
    body += (
        '<h3>As a table</h3><p class="caption">Median latency (speed-up against the reference in brackets); '
        "newest ok result per cell, else the newest attempt.</p>" + tbl
    )
    return Section("backend-matrix", "Backend matrix", how, body, figures)
