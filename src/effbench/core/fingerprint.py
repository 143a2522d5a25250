"""What a measurement ran on: CPU, board, OS, Python, library versions, threads, governor."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional

# distributions whose versions a result records (those that are installed)
PACKAGES = (
    "numpy",
    "torch",
    "torchvision",
    "timm",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "nncf",
    "tensorrt",
    "coremltools",
    "nvidia-ml-py",
    "tflite-runtime",
    "ai-edge-litert",
    "effbench",
)
CPU_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
    "avx_vnni",
    "neon",
    "asimd",
    "sve",
    "asimddp",
    "asimdhp",
    "i8mm",
    "bf16",
)
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "KMP_AFFINITY",
    "CUDA_VISIBLE_DEVICES",
)
# ARM "CPU part" numbers of the cores found in common boards
ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4b": "Cortex-A78C",
    "0xd4f": "Neoverse-V2",
    "0x004": "NVIDIA Carmel",
}


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def cpuinfo() -> Dict[str, str]:
    info: Dict[str, str] = {}
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        if ":" in line:
            k, v = (s.strip() for s in line.split(":", 1))
            info.setdefault(k, v)
    return info


def _sysctl(name: str) -> Optional[str]:
    try:
        r = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def cpu_model() -> str:
    if platform.system() == "Darwin":
        return _sysctl("machdep.cpu.brand_string") or platform.processor() or platform.machine()
    info = cpuinfo()
    if info.get("model name"):
        return info["model name"]
    if info.get("CPU part"):  # ARM boards: name the cores from their part numbers
        parts = set()
        for line in (read_text("/proc/cpuinfo") or "").splitlines():
            if line.startswith("CPU part") and ":" in line:
                parts.add(line.split(":", 1)[1].strip().lower())
        return " + ".join(sorted(ARM_PARTS.get(p, "ARM core " + p) for p in parts))
    return info.get("Hardware") or info.get("Model") or platform.processor() or platform.machine()


def cpu_flags() -> List[str]:
    info = cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        flags.update({"neon", "asimd"})
    return [f for f in CPU_FLAGS if f in flags]


def board() -> Optional[str]:
    """Raspberry Pi / Jetson model string, or the Mac's model identifier."""
    model = read_text("/proc/device-tree/model") or read_text("/sys/firmware/devicetree/base/model")
    if model:
        return model
    return _sysctl("hw.model") if platform.system() == "Darwin" else None


def os_name() -> str:
    if platform.system() == "Darwin":
        ver = platform.mac_ver()[0]
        return "macOS %s" % ver if ver else "Darwin %s" % platform.release()
    for line in (read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def memory_gib() -> Optional[float]:
    for line in (read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    if platform.system() == "Darwin":
        v = _sysctl("hw.memsize")
        if v and v.isdigit():
            return round(int(v) / 2**30, 1)
    return None


def affinity() -> Optional[List[int]]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def versions(packages=PACKAGES) -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in packages:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
        except Exception:  # a broken distribution must not fail a measurement
            pass
    return out


def governor() -> Optional[str]:
    return read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def loadavg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def machine_facts() -> Dict[str, Any]:
    """The parts of the fingerprint that do not change while a process runs."""
    return {
        "hostname": socket.gethostname(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "os_name": os_name(),
        "machine": platform.machine(),
        "arch": platform.machine(),
        "board": board(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": memory_gib(),
        "versions": versions(),
    }


_FACTS: Dict[str, Any] = {}


def fingerprint(threads: Optional[int] = None, cpus: Optional[List[int]] = None) -> Dict[str, Any]:
    if not _FACTS:
        _FACTS.update(machine_facts())
    aff = affinity()
    env = dict(_FACTS)
    env.update(
        {
            "usable_cpus": len(aff) if aff is not None else os.cpu_count(),
            "affinity": aff,
            "threads": threads,
            "pinned_cpus": cpus,
            "governor": governor(),
            "thread_env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        }
    )
    return env
