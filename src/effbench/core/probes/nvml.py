"""NVIDIA GPUs through NVML (nvidia-ml-py, imported only when the probe is asked): SM and memory
clocks, temperature, power and the throttle reasons in force, per GPU."""

from __future__ import annotations

from typing import Any, Dict, List

from .base import Probe

# nvmlClocksThrottleReason* bits (nvml.h), short names for telemetry
_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x100: "display_clocks",
}


def decode_reasons(mask: int, names: Dict[int, str]) -> List[str]:
    """Names of the set bits of an NVML clocks-event reason mask, lowest bit first; a bit `names` does
    not know (NVML adds them, and 0x200 and 0x400 have no name) reads 'unknown_0x...'."""
    out = []
    bit, mask = 1, int(mask)
    while mask >= bit:
        if mask & bit:
            out.append(names.get(bit, "unknown_%#x" % bit))
        bit <<= 1
    return out


def throttle_reasons(mask: int) -> List[str]:
    return decode_reasons(mask, _REASONS)


def _gpu(nv: Any, h: Any) -> Dict[str, Any]:
    g: Dict[str, Any] = {}
    for key, call in (
        ("temp_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
        ("sm_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
        ("mem_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
        ("max_sm_mhz", lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)),
        ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
        ("throttle", lambda: throttle_reasons(int(nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)))),
    ):
        try:
            g[key] = call()
        except Exception:  # a field this GPU or driver does not report
            pass
    return g


class Nvml(Probe):
    name = "nvml"

    def _nvml(self):
        import pynvml

        pynvml.nvmlInit()
        return pynvml

    def available(self) -> bool:
        try:
            nv = self._nvml()
            count = nv.nvmlDeviceGetCount()
        except ImportError:
            self.reason = "nvidia-ml-py not installed"
            return False
        except Exception as e:  # NVMLError: no driver, no GPU
            self.reason = "NVML unavailable: %s" % (str(e) or type(e).__name__)
            return False
        if not count:
            self.reason = "NVML sees no GPU"
            return False
        return True

    def read(self) -> Dict[str, Any]:
        nv = self._nvml()
        gpus = {}
        for i in range(nv.nvmlDeviceGetCount()):
            gpus[str(i)] = _gpu(nv, nv.nvmlDeviceGetHandleByIndex(i))
        return {"gpus": gpus}

    def temperatures(self, reading: Dict[str, Any]) -> Dict[str, float]:
        return {"gpu%s" % i: float(g["temp_c"]) for i, g in (reading.get("gpus") or {}).items() if "temp_c" in g}
