"""What a cell's telemetry record (core.cell.Measured.telemetry) says a reader should know."""

from __future__ import annotations

from typing import Any


def telemetry_warnings(record: dict[str, Any]) -> list[str]:
    out: list[str] = []
    g = record.get("gate") or {}
    if g and not g.get("skipped") and not g.get("met"):
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


def gate_skipped_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per device whose thermal gate could not work (no sensor): said once for a run or
    sweep, not on every result (each record keeps it in extra.telemetry.gate)."""
    by_device: dict[str, int] = {}
    for rec in records:
        gate = ((rec.get("extra") or {}).get("telemetry") or {}).get("gate") or {}
        if gate.get("skipped"):
            by_device[str(rec.get("device"))] = by_device.get(str(rec.get("device")), 0) + 1
    return [
        f"thermal gate: no thermal sensor on {device}: the gate was off for {n} cell(s), which ran without waiting"
        for device, n in by_device.items()
    ]
