"""--max-fallback: how much of the model ran outside the requested delegate/device or precision, read
from the placement summary a session reports (core.placement), and the verdict on it."""

from __future__ import annotations

from typing import Any

from effbench.analysis.graph_stats import GraphAnalysis
from effbench.core.placement import summarize


def outside_share(placement: dict[str, Any], precision: str) -> float:
    """The share of the model (MACs, else nodes) that did not run on the requested unit in the
    requested precision."""
    unit = (placement.get("units") or {}).get(placement.get("requested"), {})
    if placement.get("fallback_basis") == "macs" and placement.get("macs"):
        inside = (unit.get("precision_macs") or {}).get(precision, 0)
        return 1.0 - inside / placement["macs"]
    nodes = placement.get("nodes") or 0
    inside = (unit.get("precisions") or {}).get(precision, 0)
    return 1.0 - inside / nodes if nodes else 0.0


def fallback_verdict(
    runtime: dict[str, Any], precision: str, max_fallback: float | None
) -> tuple[str | None, str | None]:
    """(the error that fails the run, a warning): an error when more than `max_fallback` % of the model
    ran elsewhere; a warning when the backend cannot say where its ops ran."""
    if max_fallback is None:
        return None, None
    placement = runtime.get("placement")
    if not placement:
        return None, "--max-fallback: this backend reports no placement (where each op ran), nothing was checked"
    share = outside_share(placement, precision) * 100
    if share <= max_fallback + 1e-9:
        return None, None
    fell = sorted({f"{f['op']} ({f['unit']}, {f['precision']})" for f in placement.get("fallback") or []})
    basis = "of the MACs" if placement.get("fallback_basis") == "macs" else "of the nodes"
    return (
        f"{share:.1f}% {basis} ran outside {placement.get('requested')} {precision}, more than --max-fallback "
        f"{max_fallback:g}%" + (f": {', '.join(fell[:6])}" if fell else ""),
        None,
    )


def add_macs(runtime: dict[str, Any], analysis: GraphAnalysis | None) -> None:
    """Re-count the placement in MACs from the ONNX graph analysis, for a session that listed its nodes
    (runtime["placement_nodes"]: [name, op, unit, precision, MACs or None, ONNX nodes it covers (optional)])
    with no MACs of its own; the list itself does not stay in the record."""
    rows = runtime.pop("placement_nodes", None)
    placement = runtime.get("placement")
    if not rows or not placement or analysis is None:
        return
    macs = {s.name: s.macs for s in analysis.nodes}
    nodes = []
    for row in rows:
        covers = row[5] if len(row) > 5 and row[5] else [row[0]]
        known = [macs[c] for c in covers if c in macs]
        nodes.append((row[0], row[1], row[2], row[3], row[4] if row[4] is not None else sum(known) if known else None))
    runtime["placement"] = {
        **placement,
        **summarize(nodes, placement["requested"], precision=placement.get("requested_precision")),
    }
