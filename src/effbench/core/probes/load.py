"""System load: the 1/5/15-minute load averages and the CPUs usable by this process."""

from __future__ import annotations

import os
from typing import Any, Dict

from .base import Probe


class LoadAverage(Probe):
    name = "load"

    def available(self) -> bool:
        if hasattr(os, "getloadavg"):
            return True
        self.reason = "os.getloadavg is not available on this platform"
        return False

    def read(self) -> Dict[str, Any]:
        one, five, fifteen = os.getloadavg()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2), "cpus": cpus}
