"""Resident memory of this (worker) process.

The peak is reset before loading (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so the
peak belongs to load + warm-up + measurement of this cell, not to the export that came before.
"""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    return kb / 1024


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> tuple[float, str]:
    """(peak RSS in MiB, what it covers)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024, "VmHWM"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss (whole process lifetime)"


class MemoryMeter:
    """Brackets model loading and the run."""

    def __init__(self) -> None:
        self.before_load = self.after_load = None
        self.peak_reset = False

    def start_load(self) -> None:
        self.peak_reset = reset_peak()
        self.before_load = rss_mb()

    def end_load(self) -> None:
        self.after_load = rss_mb()

    def report(self, artifact_bytes: int | None) -> dict:
        peak, how = peak_mb()
        return {
            "peak_rss_mb": round(peak, 1),
            "peak_covers": "load + run" if self.peak_reset else "whole worker process",
            "peak_source": how,
            "load_delta_mb": round(self.after_load - self.before_load, 1)
            if self.after_load is not None and self.before_load is not None else None,
            "rss_before_load_mb": round(self.before_load, 1) if self.before_load else None,
            "artifact_bytes": artifact_bytes,
        }
