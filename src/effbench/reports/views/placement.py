"""Placement: where every op ran, per result whose runtime can say (runtime.placement), and what fell
back from the requested delegate or precision (and why, where the runtime says)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from effbench.reports.common import Section, note, table
from effbench.reports.data import Row

MAX_ROWS = 60  # results listed (the newest)


def _share(placement: dict[str, Any]) -> str:
    unit = (placement.get("units") or {}).get(placement.get("requested")) or {}
    share = unit.get("macs_share") if placement.get("fallback_basis") == "macs" else unit.get("nodes_share")
    return "–" if share is None else f"{share * 100:.1f}%"


def _fell_back(placement: dict[str, Any]) -> str:
    counts = Counter(
        (f.get("op"), f.get("unit"), f.get("precision"), f.get("why") or "") for f in placement.get("fallback") or []
    )
    if not counts:
        return "nothing"
    return "; ".join(
        f"{n}× {op} on {unit} ({precision}){': ' + why if why else ''}"
        for (op, unit, precision, why), n in counts.most_common(8)
    )


def placement_section(rows: list[Row]) -> Section:
    how = (
        "Where each op ran: the share of the model's MACs (else nodes) on the requested delegate or device, "
        "the units the rest ran on, and each op that fell back. <code>--max-fallback PCT</code> fails a run "
        "when more than PCT ran elsewhere."
    )
    sel = [r for r in rows if isinstance(r.rec.runtime.get("placement"), dict)]
    if not sel:
        return Section(
            "placement",
            "Placement",
            how,
            note("No result here says where its ops ran (LiteRT and ExecuTorch results do: run one of them)."),
            [],
        )
    body = []
    for r in sel[:MAX_ROWS]:
        pl = r.rec.runtime["placement"]
        units = ", ".join(f"{name}: {u.get('nodes', 0)} nodes" for name, u in (pl.get("units") or {}).items())
        body.append([r.model, r.backend, r.precision, pl.get("requested", "?"), _share(pl), units, _fell_back(pl)])
    return Section(
        "placement",
        "Placement",
        how,
        table(["model", "backend", "precision", "requested", "share there", "units", "fell back"], body),
        [],
    )
