"""--max-fallback: how much of the model ran outside the requested delegate/device or precision, read
from the placement summary a session reports (core.placement), and the verdict on it."""

from __future__ import annotations

from typing import Any


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
