"""Resident memory of this process around loading and running a model.

The peak is reset before loading (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so the
peak belongs to load + warm-up + measurement of this cell, not to whatever this process did before.
"""

from __future__ import annotations

import platform
import resource
from typing import Any, Dict, Optional, Tuple


def _status_kb(name: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> Optional[float]:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> Tuple[float, str]:
    """(peak RSS in MiB, where the figure comes from)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024, "VmHWM"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return (peak / 2**20 if platform.system() == "Darwin" else peak / 1024), "ru_maxrss (whole process lifetime)"


class MemoryMeter:
    """Brackets model loading and the run."""

    def __init__(self) -> None:
        self.before_load: Optional[float] = None
        self.after_load: Optional[float] = None
        self.peak_reset = False

    def start_load(self) -> None:
        self.peak_reset = reset_peak()
        self.before_load = rss_mb()

    def end_load(self) -> None:
        self.after_load = rss_mb()

    def report(self) -> Dict[str, Any]:
        peak, how = peak_mb()
        delta = None
        if self.after_load is not None and self.before_load is not None:
            delta = round(self.after_load - self.before_load, 1)
        return {
            "peak_rss_mb": round(peak, 1),
            "peak_covers": "load + run" if self.peak_reset else "whole process",
            "peak_source": how,
            "load_delta_mb": delta,
            "rss_before_load_mb": round(self.before_load, 1) if self.before_load else None,
        }
