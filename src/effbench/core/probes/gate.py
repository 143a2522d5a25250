"""The thermal gate: before a cell starts, wait until the hottest sensor is below a limit (bounded
by a timeout, with progress), and record the wait. With no thermal sensor it says so and the cell
goes on."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from . import Telemetry

# a limit outside this range cannot be an idle temperature any device reaches (refused up front)
PLAUSIBLE_C = (25.0, 105.0)
POLL_S = 1.0


def check_limit(max_start_temp: Optional[float]) -> Optional[str]:
    """Why `max_start_temp` is refused, or None."""
    if max_start_temp is None:
        return None
    lo, hi = PLAUSIBLE_C
    if not lo <= max_start_temp <= hi:
        return "%g C is outside the plausible idle range %g-%g C of a device's hottest sensor" % (
            max_start_temp,
            lo,
            hi,
        )
    return None


def wait_until_cool(
    telemetry: Telemetry,
    max_start_temp: float,
    timeout_s: float,
    progress: Optional[Callable[[str, float, str], None]] = None,
    poll_s: float = POLL_S,
) -> Dict[str, Any]:
    """{"limit_c", "waited_s", "start_c", "end_c", "sensor", "met"} or {"limit_c", "skipped": why}."""
    t0 = time.monotonic()
    hot = telemetry.hottest()
    if hot is None:
        return {"limit_c": max_start_temp, "skipped": "no thermal sensor on this device: the thermal gate is off"}
    sensor, start = hot
    now = start
    while now >= max_start_temp:
        waited = time.monotonic() - t0
        if waited >= timeout_s:
            break
        if progress:
            progress(
                "cooldown",
                min(1.0, waited / timeout_s),
                "%s at %.1f C, waiting for < %g C" % (sensor, now, max_start_temp),
            )
        time.sleep(min(poll_s, max(0.0, timeout_s - waited)))
        hot = telemetry.hottest()
        if hot is None:
            break
        sensor, now = hot
    met = now < max_start_temp
    return {
        "limit_c": max_start_temp,
        "waited_s": round(time.monotonic() - t0, 3),
        "start_c": start,
        "end_c": now,
        "sensor": sensor,
        "met": met,
    }
