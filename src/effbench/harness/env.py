"""Environment fingerprint: what a result was measured on."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino",
             "tensorrt", "coremltools", "nvidia-ml-py", "numpy", "effbench")
_INTERESTING_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                      "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni", "neon", "asimd", "sve")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE", "KMP_AFFINITY", "CUDA_VISIBLE_DEVICES")


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                info.setdefault(k, v)
    except OSError:
        pass
    return info


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    flags = set((_cpuinfo().get("flags") or _cpuinfo().get("Features") or "").split())
    return [f for f in _INTERESTING_FLAGS if f in flags]


def governor() -> str | None:
    p = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return p.read_text().strip()
    except OSError:
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def git_commit(cwd: str | None = None) -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or os.getcwd(), capture_output=True,
                           text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd or os.getcwd(),
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def _static() -> dict:
    mem = None
    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        pass
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": mem,
        "versions": _versions(),
    }


def gpu_fingerprint(device: str) -> dict | None:
    """The CUDA device a cell ran on: name, capability, UUID, driver (None on the CPU)."""
    if not device.startswith("cuda"):
        return None
    from effbench.backends.cuda_util import cuda_index, gpu_identity

    try:
        gpu = gpu_identity(cuda_index(device))
    except Exception as e:  # the cell itself will say why CUDA failed
        return {"error": str(e)}
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpu["driver"] = driver.decode() if isinstance(driver, bytes) else driver
    except Exception:
        gpu["driver"] = None
    return gpu


def fingerprint(threads: int | None = None, cpus: list[int] | None = None, device: str = "cpu") -> dict:
    env = dict(_static())
    env.update({
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "pinned_cpus": cpus,
        "governor": governor(),
        "thread_env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
        "git_commit": git_commit(),
    })
    gpu = gpu_fingerprint(device)
    if gpu:
        env["gpu"] = gpu
    return env
