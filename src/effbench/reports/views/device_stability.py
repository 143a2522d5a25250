"""Device stability: each device's score (0-100) over its stored history, per model and backend,
so a device whose numbers cannot be trusted is visible before anyone compares on it."""

from __future__ import annotations

from collections import defaultdict

from effbench.harness.result import Result
from effbench.harness.stability_score import MIN_RUNS, device_stability
from effbench.reports.common import Section, note, table
from effbench.reports.data import Row

_CLASS = {"Excellent": "", "Good": "", "Moderate": "", "Poor": "bad"}


def device_stability_section(rows: list[Row]) -> Section:
    how = (
        "The score combines, per cell measured at least %d times, the spread of its run medians over time (CV, "
        "max/min) and its runs' tails (p99/p50) into 0-100 (after ExecuTorch's analyze_latency_stability.py): "
        "Excellent >= 90, Good >= 75, Moderate >= 50, else Poor. <code>bench devices stability NAME</code> "
        "lists the cells." % MIN_RUNS
    )
    by_device: dict[str, list[Result]] = defaultdict(list)
    for r in rows:
        by_device[r.device].append(r.rec)
    out = []
    for device, recs in sorted(by_device.items()):
        found = device_stability(recs)
        if not found["cells"]:
            continue
        worst = found["cells"][0]
        out.append(
            [
                device,
                (f"{found['score']:.0f} {found['rating']}", _CLASS[found["rating"]]),
                str(len(found["cells"])),
                str(found["runs"]),
                f"{worst.model} | {worst.backend}: {worst.score:.0f} (CV {worst.cv * 100:.1f}%, "
                f"max/min {worst.max_min:.2f}, p99/p50 {worst.p99_p50:.2f})",
            ]
        )
    if not out:
        body = note("No cell has been measured %d times on one device yet: no stability score." % MIN_RUNS)
    else:
        body = table(["device", "score", "cells", "runs", "least stable cell"], out)
    return Section("device-stability", "Device stability", how, body, [])
