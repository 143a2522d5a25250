"""What a cell's telemetry record (core.cell.Measured.telemetry) says a reader should know."""

from __future__ import annotations

from typing import Any


def telemetry_warnings(record: dict[str, Any]) -> list[str]:
    out: list[str] = []
    g = record.get("gate") or {}
    if g.get("skipped"):
        out.append(f"thermal gate: {g['skipped']}")
    elif g and not g.get("met"):
        out.append(
            f"thermal gate: {g.get('sensor')} still at {g.get('end_c')} C after {g.get('waited_s')} s "
            f"(limit {g.get('limit_c')} C): the cell started hot"
        )
    before, after = record.get("before") or {}, record.get("after") or {}
    b_mhz = (before.get("cpufreq") or {}).get("cur_mhz_mean")
    a_mhz = (after.get("cpufreq") or {}).get("cur_mhz_mean")
    if b_mhz and a_mhz and a_mhz < 0.9 * b_mhz:
        out.append(f"CPU clock fell during the cell: {b_mhz:.0f} -> {a_mhz:.0f} MHz (mean over cores)")
    return out
