"""Claims: a paper's published speed ratio against the ratio measured here, per runtime and device.

Reads only stored records: `bench claims verify` stores every cell with `extra.claim` (claim name,
run id, side A or B, round, published ratio, kind, tolerance, the notes of the plan). A run's records
of one runtime and device are pooled per side and judged by the same rule and bootstrap as the command
(effbench.claims.verdict), so the report and the terminal agree to the digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from effbench.harness.result import Result
from effbench.reports.common import Figure, Section, axis, base_layout, fmt_ms, h, note, p, table
from effbench.reports.data import Row, num, text

if TYPE_CHECKING:
    from effbench.claims.verdict import ClaimVerdict

VERDICT_COLOURS = {"holds": "#067647", "does not hold": "#b42318", "inconclusive": "#a15c07", "failed": "#7a271a"}


@dataclass
class ClaimResult:
    name: str
    run: str
    backend: str
    device: str
    batch: int | None
    precision: str
    meta: dict[str, Any]
    created_at: str
    sides: dict[str, list[Result]] = field(default_factory=lambda: {"A": [], "B": []})
    verdict: Any = None  # effbench.claims.verdict.ClaimVerdict
    older_runs: int = 0

    @property
    def tolerance(self) -> float:
        tol = num(self.meta.get("tolerance"))
        return 0.1 if tol is None or not 0 <= tol < 1 else tol

    @property
    def label(self) -> str:
        return f"{self.name} · {self.backend} · {self.device}"


def _meta(r: Row) -> dict[str, Any] | None:
    meta = r.rec.extra.get("claim")
    if not isinstance(meta, dict) or text(meta.get("side")) not in ("A", "B") or not text(meta.get("name")):
        return None
    if (num(meta.get("published_ratio")) or 0) <= 0 or text(meta.get("kind")) not in ("faster", "as_fast"):
        return None
    return meta


def claim_results(rows: list[Row]) -> list[ClaimResult]:
    """The newest run of each claim on each runtime, device, batch and precision, judged."""
    from effbench.claims.verdict import judge

    groups: dict[tuple, ClaimResult] = {}
    for r in rows:
        meta = _meta(r)
        if meta is None:
            continue
        key = (text(meta["name"]), text(meta.get("run")), r.backend, r.device, r.batch, r.precision)
        g = groups.get(key)
        if g is None:
            g = groups[key] = ClaimResult(key[0], key[1], r.backend, r.device, r.batch, r.precision, meta, r.created_at)
        g.sides[meta["side"]].append(r.rec)
        g.created_at = max(g.created_at, r.created_at)
    newest: dict[tuple, ClaimResult] = {}
    for (name, _run, *cell), g in sorted(groups.items(), key=lambda kv: kv[1].created_at, reverse=True):
        k = (name, *cell)
        if k in newest:
            newest[k].older_runs += 1
        else:
            newest[k] = g
    out = sorted(newest.values(), key=lambda g: (g.name, g.device, g.backend, g.batch or 0, g.precision))
    for g in out:
        for side in g.sides.values():  # measurement order: by round, then time
            side.sort(key=lambda rec: (num(rec.extra["claim"].get("round")) or 0, rec.created_at))
        g.verdict = judge(g.meta["kind"], float(g.meta["published_ratio"]), g.tolerance, g.sides["A"], g.sides["B"])
    return out


def _ci(v: ClaimVerdict) -> str:
    return f"[{v.ci_low:.4g}, {v.ci_high:.4g}]" if v.ci_low is not None and v.ci_high is not None else ""


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}×"


def _figure(results: list[ClaimResult]) -> Figure:
    from effbench.claims.verdict import band

    labels = [p(g.label) for g in results]
    data: list[dict] = []
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "published",
            "x": [g.verdict.published for g in results],
            "y": labels,
            "marker": {"color": "#222", "size": 12, "symbol": "diamond-open", "line": {"width": 2}},
            "hovertext": [
                f"published {g.verdict.published:.4g}× ({p(text(g.meta.get('statement')))})" for g in results
            ],
            "hoverinfo": "text",
            "meta": {"role": "published"},
        }
    )
    edges = [(band(g.meta["kind"], g.verdict.published, g.tolerance), p(g.label)) for g in results]
    tx = [e for (lo, hi), _ in edges for e in (lo, hi) if e != float("inf")]
    ty = [y for (lo, hi), y in edges for e in (lo, hi) if e != float("inf")]
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "edge of the verdict band",
            "x": tx,
            "y": ty,
            "marker": {"color": "#888", "size": 16, "symbol": "line-ns-open", "line": {"width": 2}},
            "hoverinfo": "skip",
            "meta": {"role": "threshold"},
        }
    )
    for verdict, colour in VERDICT_COLOURS.items():
        grp = [g for g in results if g.verdict.verdict == verdict and g.verdict.ratio is not None]
        if not grp:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"measured ({verdict})",
                "x": [g.verdict.ratio for g in grp],
                "y": [p(g.label) for g in grp],
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "thickness": 1.5,
                    "width": 4,
                    "color": colour,
                    "array": [g.verdict.ci_high - g.verdict.ratio for g in grp],
                    "arrayminus": [g.verdict.ratio - g.verdict.ci_low for g in grp],
                },
                "marker": {"color": colour, "size": 11, "symbol": "circle"},
                "hovertext": [
                    f"<b>{p(g.name)}</b><br>{p(g.backend)} · {p(g.device)} · batch {p(g.batch)}<br>"
                    f"measured {g.verdict.ratio:.4g}× {p(_ci(g.verdict))}<br>published "
                    f"{g.verdict.published:.4g}×<br>{p(verdict)}: {p(g.verdict.reason)}"
                    for g in grp
                ],
                "hoverinfo": "text",
                "meta": {"role": "measured"},
            }
        )
    xs = [x for g in results for x in (g.verdict.published, g.verdict.ci_low, g.verdict.ci_high) if x]
    layout = base_layout(
        xaxis=axis("A's speed over B's (×, log scale)", log=True, values=xs + [1.0]),
        yaxis={"automargin": True, "autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        margin={"l": 40, "r": 20, "t": 50, "b": 60},
        shapes=[
            {
                "type": "line",
                "x0": 1,
                "x1": 1,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": "#bbb", "dash": "dot", "width": 1},
            }
        ],
    )
    return Figure("fig-claims", data, layout, height=max(260, 90 + 34 * len(results)))


def _unverified(verified: set[str]) -> list[str]:
    try:  # the card's own word on buildability only: a report does not import timm
        from effbench.claims.library import load_library

        return sorted(e.name for e in load_library() if e.name not in verified and not e.claim.unbuildable())
    except Exception:  # a broken user card must not break the report
        return []


def claims_section(rows: list[Row]) -> Section:
    results = claim_results(rows)
    how = (
        "Each stored claim verification: the paper's published ratio (◇) against the ratio measured here "
        "(●, A's speed over B's) with its 95% bootstrap CI, per runtime and device; the grey tick is the "
        "verdict's threshold. A and B ran interleaved; see docs/claims.md for the rule."
    )
    if not results:
        return Section(
            "claims",
            "Claims",
            how,
            note(
                "No claim verifications in these results: run <code>bench claims verify NAME</code> "
                "(<code>bench claims list</code> shows the shipped claim cards)."
            ),
            [],
        )
    fig = _figure(results)
    body_rows = []
    for g in results:
        v = g.verdict
        colour = VERDICT_COLOURS.get(v.verdict, "#222")
        notes = [v.reason, *[text(n) for n in (g.meta.get("notes") or []) if isinstance(n, str)]]
        if g.older_runs:
            notes.append(f"{g.older_runs} older run(s) of this cell not shown")
        body_rows.append(
            [
                (f'<b>{h(g.name)}</b><br><span class="muted">{h(g.meta.get("paper"))}</span>', "name"),
                h(g.backend),
                h(g.device),
                (h(g.batch), "num"),
                (f"{fmt_ms(v.median_a_ms)} / {fmt_ms(v.median_b_ms)}", "num"),
                (_ratio(v.published), "num"),
                (f"{_ratio(v.ratio)} {_ci(v)}", "num"),
                f'<b style="color:{colour}">{h(v.verdict)}</b>',
                (h("; ".join(n for n in notes if n)), "notes"),
            ]
        )
    tbl = table(
        [
            "claim",
            "runtime",
            "device",
            "batch",
            "A / B median ms",
            "published",
            "measured [95% CI]",
            "verdict",
            "notes",
        ],
        body_rows,
        raw=True,
    )
    body = [fig.div(), tbl]
    verified = {g.name for g in results}
    rest = _unverified(verified)
    if rest:
        body.append(
            note(
                f"{len(rest)} shipped claim(s) not verified in these results: "
                f"{h(', '.join(rest))} (<code>bench claims verify NAME</code>)."
            )
        )
    return Section("claims", "Claims", how, "".join(body), [fig])


def claims_markdown(rows: list[Row]) -> list[str]:
    """Markdown lines listing each verified claim's verdicts (nothing when there are none)."""
    from effbench.reports.markdown import md_escape

    results = claim_results(rows)
    if not results:
        return []
    lines = [
        "",
        "#### Claims",
        "",
        "| claim | runtime | device | batch | published | measured [95% CI] | verdict |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    icon = {"holds": "✅", "does not hold": "❌", "inconclusive": "❔", "failed": "⚠️"}
    for g in results:
        v = g.verdict
        lines.append(
            f"| {md_escape(g.name)} | {md_escape(g.backend)} | {md_escape(g.device)} | {md_escape(g.batch)} "
            f"| {_ratio(v.published)} | {_ratio(v.ratio)} {_ci(v)} | {icon.get(v.verdict, '')} "
            f"{md_escape(v.verdict)}: {md_escape(v.reason)} |"
        )
    lines += [
        "",
        "<sub>ratio = A's speed over B's, measured interleaved; a claim holds when the whole 95% CI "
        "clears published × (1 − tolerance) (as-fast claims: lies inside 1 ± tolerance).</sub>",
    ]
    return lines
