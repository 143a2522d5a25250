"""NVIDIA Jetson boards through sysfs (what tegrastats reads): the L4T release, the GPU's devfreq
load and clocks, and the EMC (memory) clock. Thermal zones (CPU-therm, GPU-therm, ...) are read by
the thermal probe."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from .base import Probe, read_file, read_number


class Jetson(Probe):
    name = "jetson"

    def _gpu_devfreq(self) -> Optional[str]:
        base = self.path("sys/class/devfreq")
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return None
        for n in names:  # 17000000.ga10b (Orin), 57000000.gpu (Xavier/Nano)
            if "gpu" in n or n.endswith((".ga10b", ".gv11b", ".gp10b", ".gm20b")):
                return os.path.join(base, n)
        return None

    def available(self) -> bool:
        if read_file(self.path("etc/nv_tegra_release")) is not None or self._gpu_devfreq():
            return True
        self.reason = "not a Jetson (no /etc/nv_tegra_release, no GPU devfreq node)"
        return False

    def read(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        release = read_file(self.path("etc/nv_tegra_release"))
        if release:
            out["l4t"] = release.splitlines()[0][:120]
        gpu = self._gpu_devfreq()
        if gpu:
            for key, f in (("gpu_cur_mhz", "cur_freq"), ("gpu_min_mhz", "min_freq"), ("gpu_max_mhz", "max_freq")):
                hz = read_number(gpu + "/" + f)
                if hz is not None:
                    out[key] = round(hz / 1e6, 1)
            load = read_number(gpu + "/device/load")
            if load is not None:
                out["gpu_load_pct"] = round(load / 10.0, 1)  # per-mille
        emc = read_number(self.path("sys/kernel/debug/bpmp/debug/clk/emc/rate"))
        if emc is not None:
            out["emc_mhz"] = round(emc / 1e6, 1)
        return out
