"""Device telemetry: small independent probes (one class per source) and the snapshot taken before
and after every cell and once per window of a sustained run.

A new source is one file here with a `Probe` subclass, listed in `PROBES`.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from .base import Probe
from .cpufreq import CpuFreq
from .hwmon import Hwmon
from .jetson import Jetson
from .load import LoadAverage
from .nvml import Nvml
from .thermal import ThermalZones

PROBES = (ThermalZones, Hwmon, CpuFreq, LoadAverage, Nvml, Jetson)


class Telemetry:
    """The probes available on this device (checked once), read together."""

    def __init__(self, root: Optional[str] = None, probes=PROBES):
        self.probes: List[Probe] = []
        self.unavailable: Dict[str, str] = {}
        for cls in probes:
            probe = cls(root)
            if probe.available():
                self.probes.append(probe)
            else:
                self.unavailable[probe.name] = probe.reason

    def snapshot(self) -> Dict[str, Any]:
        """{"t": unix time, probe name: reading ...}; a probe that fails now is skipped, with why."""
        snap: Dict[str, Any] = {"t": round(time.time(), 3)}
        for probe in self.probes:
            try:
                snap[probe.name] = probe.read()
            except Exception as e:  # a sensor that went away mid-run
                snap.setdefault("errors", {})[probe.name] = "%s: %s" % (type(e).__name__, e)
        return snap

    def temperatures(self, snap: Dict[str, Any]) -> Dict[str, float]:
        temps: Dict[str, float] = {}
        for probe in self.probes:
            if probe.name in snap:
                temps.update(probe.temperatures(snap[probe.name]))
        return temps

    def has_temperature(self) -> bool:
        return bool(self.temperatures(self.snapshot()))

    def hottest(self, snap: Optional[Dict[str, Any]] = None) -> Optional[Tuple[str, float]]:
        temps = self.temperatures(snap if snap is not None else self.snapshot())
        if not temps:
            return None
        name = max(temps, key=lambda k: temps[k])
        return name, temps[name]


def summary(snap: Dict[str, Any], telemetry: Telemetry) -> Dict[str, Any]:
    """The few numbers a window or a cell shows: hottest temperature, mean CPU clock, load, GPU clock."""
    out: Dict[str, Any] = {}
    hot = telemetry.hottest(snap)
    if hot:
        out["hottest"], out["hottest_c"] = hot
    cpu = snap.get("cpufreq") or {}
    if "cur_mhz_mean" in cpu:
        out["cpu_mhz"] = cpu["cur_mhz_mean"]
    if cpu.get("governors"):
        out["governors"] = cpu["governors"]
    if "load" in snap:
        out["load1"] = snap["load"]["load1"]
    gpus = (snap.get("nvml") or {}).get("gpus") or {}
    sm = [g["sm_mhz"] for g in gpus.values() if "sm_mhz" in g]
    if sm:
        out["gpu_mhz"] = round(sum(sm) / len(sm), 1)
    throttle = sorted({r for g in gpus.values() for r in g.get("throttle") or [] if r != "gpu_idle"})
    if throttle:
        out["gpu_throttle"] = throttle
    if "gpu_cur_mhz" in (snap.get("jetson") or {}):
        out["gpu_mhz"] = snap["jetson"]["gpu_cur_mhz"]
    return out
