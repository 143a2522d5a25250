"""NVIDIA GPU meter through NVML (the nvidia-ml-py package, imported as pynvml).

The NVML device is found by the CUDA device's UUID (torch.cuda.get_device_properties(i).uuid),
never by index: CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER renumber CUDA devices, NVML does not.

`NvmlMeter` implements the meter interface the window logic in `energy.py` runs over:
read_energy_mj() (cumulative counter, Volta and later; None where the GPU has none),
read_power_mw(), read_reasons(), clock(), sleep().

Power: on Ampere and later nvmlDeviceGetPowerUsage is a 1 s average (sampled only part of the
time on A100/H100), too coarse to cross-check short windows; where the driver has the field
NVML_FI_DEV_POWER_INSTANT the meter reads that instead, and says which one it read
(`power_field`). Idle power is measured over at least MIN_IDLE_S for the same reason.
"""

from __future__ import annotations

import time
from typing import Any

from effbench.backends.cuda_util import match_uuid
from effbench.core.gpu import nvml_memory
from effbench.core.probes.nvml import decode_reasons

NO_DRIVER = "energy unavailable: no NVIDIA driver"
MIN_IDLE_S = 5.0  # several of NVML's 1 s power averages
POWER_INSTANT_FIELD = 186  # NVML_FI_DEV_POWER_INSTANT (nvml.h), for bindings that lack the name

# clocks-event ("throttle") reason bits, as nvml.h's nvmlClocksEventReason* define them; any
# other bit is printed as unknown_0x... (0x200 and 0x400 have no name in NVML)
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_throttle_reasons(mask: int) -> list[str]:
    return decode_reasons(mask, THROTTLE_REASONS)


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _cuda_version(v: int) -> str:
    """NVML's 12040 -> '12.4'."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def read_instant_power_mw(nvml: Any, handle: Any) -> float | None:
    """NVML_FI_DEV_POWER_INSTANT in mW, or None where the driver or the GPU does not have it."""
    field_id = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", POWER_INSTANT_FIELD)
    try:
        value = nvml.nvmlDeviceGetFieldValues(handle, [field_id])[0]
    except Exception:
        return None
    if getattr(value, "nvmlReturn", 1) != 0:
        return None
    mw = float(value.value.uiVal)
    return mw if mw > 0 else None


def init() -> tuple[Any, str | None]:
    """(pynvml module, None) with NVML initialised, or (None, reason)."""
    try:
        import pynvml
    except ImportError:
        return None, "energy unavailable: nvidia-ml-py not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        name = type(e).__name__
        if any(k in name for k in ("LibraryNotFound", "DriverNotLoaded")):
            return None, NO_DRIVER
        return None, f"energy unavailable: NVML failed to initialise ({name}: {e})"
    return pynvml, None


def find_handle(nvml, uuid: str) -> tuple[Any, int] | None:
    """(NVML handle, NVML index) of the device whose UUID equals `uuid` (any spelling)."""
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    uuids = []
    for h in handles:
        try:
            uuids.append(_text(nvml.nvmlDeviceGetUUID(h)))
        except Exception:
            uuids.append("")
    i = match_uuid(uuid, uuids)
    return (handles[i], i) if i is not None else None


class NvmlMeter:
    """One NVML device. Counter support is probed once at open: the NotSupported error of a
    pre-Volta GPU becomes `has_counter = False`, and the window logic then integrates power and
    labels the result estimated."""

    kind = "nvml"
    min_idle_s = MIN_IDLE_S

    def __init__(self, nvml, handle, nvml_index: int, cuda_index: int, uuid: str):
        self.nvml, self.handle = nvml, handle
        self.nvml_index, self.cuda_index, self.uuid = nvml_index, cuda_index, uuid
        self.has_counter = True
        self.counter_error = None
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as e:  # NVMLError_NotSupported on GPUs before Volta
            self.has_counter = False
            self.counter_error = type(e).__name__
        self.power_field = "instant" if read_instant_power_mw(nvml, handle) is not None else "average"
        self.has_power = True
        if self.power_field == "average":
            try:
                nvml.nvmlDeviceGetPowerUsage(handle)
            except Exception:
                self.has_power = False
        fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        self._reasons_fn = fn

    # --- the meter interface ---
    def read_energy_mj(self) -> float | None:
        if not self.has_counter:
            return None
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def read_power_mw(self) -> float | None:
        if not self.has_power:
            return None
        if self.power_field == "instant":
            mw = read_instant_power_mw(self.nvml, self.handle)
            if mw is not None:
                return mw
        return float(self.nvml.nvmlDeviceGetPowerUsage(self.handle))

    def read_reasons(self) -> int:
        if self._reasons_fn is None:
            return 0
        try:
            return int(self._reasons_fn(self.handle))
        except Exception:
            return 0

    def clock(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    # --- device state ---
    def snapshot(self) -> dict[str, Any]:
        """Temperature and current clocks, now."""
        n, h = self.nvml, self.handle
        out: dict[str, Any] = {}
        for key, fn in (
            ("temperature_c", lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            ("sm_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            ("mem_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            ("power_w", lambda: (self.read_power_mw() or 0.0) / 1000 or None),
        ):
            try:
                out[key] = fn()
            except Exception:
                out[key] = None
        return out

    def clocks(self) -> tuple[int | None, int | None]:
        n, h = self.nvml, self.handle
        try:
            return n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM), n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)
        except Exception:
            return None, None

    def info(self) -> dict[str, Any]:
        n, h = self.nvml, self.handle

        def get(fn, *args, conv=lambda v: v):
            try:
                return conv(fn(*args))
            except Exception:
                return None

        return {
            "name": get(n.nvmlDeviceGetName, h, conv=_text),
            "uuid": self.uuid,
            "cuda_index": self.cuda_index,
            "nvml_index": self.nvml_index,
            "matched_by": "uuid",
            "driver_version": get(n.nvmlSystemGetDriverVersion, conv=_text),
            "cuda_driver_version": get(n.nvmlSystemGetCudaDriverVersion, conv=_cuda_version),
            "power_limit_w": get(n.nvmlDeviceGetEnforcedPowerLimit, h, conv=lambda v: v / 1000),
            "max_sm_clock_mhz": get(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM),
            "max_mem_clock_mhz": get(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_MEM),
            "energy_counter": self.has_counter,
            "energy_counter_error": self.counter_error,
            "power_field": self.power_field,
        }

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


def open_meter(device: str) -> tuple[NvmlMeter | None, str | None]:
    """The NVML meter of CUDA device `device` ('cuda' or 'cuda:N'), or (None, reason)."""
    from effbench.backends.cuda_util import cuda_index, torch_device_uuid

    nvml, reason = init()
    if nvml is None:
        return None, reason
    try:
        index = cuda_index(device)
        uuid = torch_device_uuid(index)
        if not uuid:
            nvml.nvmlShutdown()
            return None, (
                f"energy unavailable: cannot read the UUID of {device} from torch, so its NVML "
                "device cannot be matched (matching by index would be wrong under CUDA_VISIBLE_DEVICES)"
            )
        found = find_handle(nvml, uuid)
        if found is None:
            nvml.nvmlShutdown()
            return None, (
                f"energy unavailable: no NVML device has the UUID of {device} ({uuid}); "
                "MIG instances and some virtual GPUs have no NVML energy meter"
            )
        handle, nvml_index = found
        return NvmlMeter(nvml, handle, nvml_index, index, uuid), None
    except Exception as e:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
        return None, f"energy unavailable: NVML failed ({type(e).__name__}: {e})"


def memory_for_cuda_device(index: int) -> dict[str, Any] | None:
    """NVML used/total memory of the device matching CUDA device `index` by UUID, or None."""
    from effbench.backends.cuda_util import torch_device_uuid

    return nvml_memory(torch_device_uuid(index))
