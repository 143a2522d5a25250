"""Where every op of a model ran: one summary shape for every runtime that can say.

A runtime lists its nodes as (name, op type, unit, precision, MACs or None); `summarize` counts nodes and
MACs per unit (a delegate, a device, an execution provider, kernels of a precision) and names what ran
outside the requested unit (or, given a requested precision, in another precision where it did work),
with the reason the runtime gave (`reasons`: by node name, else by op type).
`fallback_share` is the share of the model's MACs that ran outside it
(of its nodes, where the runtime gives no MACs).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

Node = Tuple[str, str, str, str, Optional[int]]  # name, op type, unit, precision, MACs


def summarize(
    nodes: Iterable[Node], requested: str, reasons: Optional[Dict[str, str]] = None, precision: Optional[str] = None
) -> Dict[str, Any]:
    rows = list(nodes)
    reasons = reasons or {}
    units: Dict[str, Dict[str, Any]] = {}
    total_macs = sum(m or 0 for *_, m in rows)
    for _name, _op, unit, prec, macs in rows:
        u = units.setdefault(unit, {"nodes": 0, "macs": 0, "precisions": {}, "precision_macs": {}})
        u["nodes"] += 1
        u["macs"] += macs or 0
        u["precisions"][prec] = u["precisions"].get(prec, 0) + 1
        u["precision_macs"][prec] = u["precision_macs"].get(prec, 0) + (macs or 0)
    for u in units.values():
        u["macs_share"] = round(u["macs"] / total_macs, 4) if total_macs else None
        u["nodes_share"] = round(u["nodes"] / len(rows), 4) if rows else None
    fallback: List[Dict[str, Any]] = [
        {
            "node": name,
            "op": op,
            "unit": unit,
            "precision": prec,
            "macs": macs,
            "why": reasons.get(name) or reasons.get(op, ""),
        }
        for name, op, unit, prec, macs in rows
        if unit != requested or (precision and prec != precision and macs != 0)
    ]
    if total_macs:
        share = sum(f["macs"] or 0 for f in fallback) / total_macs
        basis = "macs"
    else:
        share = len(fallback) / len(rows) if rows else 0.0
        basis = "nodes"
    out: Dict[str, Any] = {
        "requested": requested,
        "nodes": len(rows),
        "macs": total_macs or None,
        "units": units,
        "fallback_share": round(share, 4),
        "fallback_basis": basis,
        "fallback": fallback,
    }
    if precision:
        out["requested_precision"] = precision
    return out
