"""The CUDA device behind an ordinal, by UUID, without torch: the CUDA driver API through ctypes
(cuDeviceGetUuid sees the ordinal as CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER renumber it) and
NVML's device with that UUID. Never by index: NVML numbers every GPU of the machine in PCI order."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import time
from typing import Any, Dict, Iterator, Optional

try:
    import fcntl
except ImportError:  # Windows: builds are not serialised across processes there
    fcntl = None  # type: ignore[assignment]

_LIBCUDA = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so", "libcuda.dylib")


def nvml_uuid(hex32: str) -> str:
    """32 hex digits -> NVML's spelling 'GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'."""
    h = hex32.lower()
    return "GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def _libcuda() -> Any:
    for name in _LIBCUDA:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def cuda_device_uuid(ordinal: int) -> Optional[str]:
    """The UUID (32 hex digits) of CUDA device `ordinal` as this process sees it, or None where
    there is no CUDA driver or no such device."""
    lib = _libcuda()
    if lib is None:
        return None
    try:
        if lib.cuInit(0) != 0:
            return None
        dev = ctypes.c_int()
        if lib.cuDeviceGet(ctypes.byref(dev), int(ordinal)) != 0:
            return None
        raw = (ctypes.c_ubyte * 16)()
        get = getattr(lib, "cuDeviceGetUuid_v2", None) or lib.cuDeviceGetUuid
        if get(ctypes.byref(raw), dev) != 0:
            return None
    except (AttributeError, OSError):
        return None
    return bytes(raw).hex()


def nvml_memory(uuid_hex: Optional[str]) -> Optional[Dict[str, Any]]:
    """Used/total memory of the NVML device with this UUID (whole device, every process), or None."""
    if not uuid_hex:
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        mem = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByUUID(nvml_uuid(uuid_hex)))
        return {
            "used_mb": round(mem.used / 2**20, 1),
            "total_mb": round(mem.total / 2**20, 1),
            "covers": "whole device, every process (NVML)",
            "uuid": uuid_hex,
            "matched_by": "uuid",
        }
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def lock_name(gpu_key: str) -> str:
    return "gpu-%s.lock" % (re.sub(r"[^A-Za-z0-9.]+", "-", gpu_key).strip("-") or "unknown")


@contextlib.contextmanager
def gpu_build_lock(lock_dir: str, gpu_key: str) -> Iterator[Dict[str, Any]]:
    """Hold the engine-build lock of one GPU (a file lock, across processes): TensorRT builds that
    share a GPU corrupt each other's tactic timings (NVIDIA/TensorRT#3543), and a shared timing
    cache would keep them. Yields what the build record keeps: the GPU, the lock file, the wait."""
    os.makedirs(lock_dir, exist_ok=True)
    path = os.path.join(lock_dir, lock_name(gpu_key))
    record: Dict[str, Any] = {"gpu": gpu_key, "path": path, "waited_s": 0.0}
    if fcntl is None:
        record["held"] = False
        yield record
        return
    t0 = time.perf_counter()
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        record["waited_s"] = round(time.perf_counter() - t0, 3)
        record["held"] = True
        try:
            yield record
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
