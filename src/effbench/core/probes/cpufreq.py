"""CPU frequency scaling per core (/sys/devices/system/cpu/cpu*/cpufreq): governor and current,
minimum and maximum frequency (scaling_* limits and the hardware's cpuinfo_* range), in MHz."""

from __future__ import annotations

from typing import Any, Dict

from .base import Probe, entries, read_file, read_number

_FILES = (
    ("cur_mhz", "scaling_cur_freq"),
    ("min_mhz", "scaling_min_freq"),
    ("max_mhz", "scaling_max_freq"),
    ("hw_min_mhz", "cpuinfo_min_freq"),
    ("hw_max_mhz", "cpuinfo_max_freq"),
)


class CpuFreq(Probe):
    name = "cpufreq"

    def _cpus(self):
        base = self.path("sys/devices/system/cpu")
        for cpu in entries(base, "cpu"):
            if cpu[3:].isdigit():
                yield int(cpu[3:]), self.path("sys/devices/system/cpu", cpu, "cpufreq")

    def available(self) -> bool:
        if any(read_file(p + "/scaling_governor") or read_number(p + "/scaling_cur_freq") for _, p in self._cpus()):
            return True
        self.reason = "no cpufreq interface under /sys/devices/system/cpu (a VM or a fixed-clock CPU)"
        return False

    def read(self) -> Dict[str, Any]:
        cores = {}
        for idx, p in self._cpus():
            core: Dict[str, Any] = {}
            gov = read_file(p + "/scaling_governor")
            if gov:
                core["governor"] = gov
            for key, f in _FILES:
                khz = read_number(p + "/" + f)
                if khz is not None:
                    core[key] = round(khz / 1000.0, 1)
            if core:
                cores[str(idx)] = core
        governors = sorted({c["governor"] for c in cores.values() if "governor" in c})
        cur = [c["cur_mhz"] for c in cores.values() if "cur_mhz" in c]
        out: Dict[str, Any] = {"cores": cores, "governors": governors}
        if cur:
            out["cur_mhz_mean"] = round(sum(cur) / len(cur), 1)
        return out
