"""What a measurement ran on: CPU, board, OS, Python, library versions, threads, governor."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional

from . import armcpu

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
    text = read_text("/proc/cpuinfo") or ""
    if armcpu.emulated(text):
        return armcpu.emulated_model(platform.machine())
    found = cpu_clusters()
    if found:  # ARM: name the cores from their MIDR fields, not the kernel's "ARMv8 Processor"
        return armcpu.describe(found)
    info = cpuinfo()
    return (
        info.get("model name")
        or info.get("Hardware")
        or info.get("Model")
        or platform.processor()
        or platform.machine()
    )


def cpu_clusters() -> List[armcpu.Cluster]:
    """ARM core types and big.LITTLE clusters of this machine (empty elsewhere or under emulation)."""
    text = read_text("/proc/cpuinfo") or ""
    if armcpu.emulated(text):
        return []
    return armcpu.clusters(armcpu.arm_cpus(text))


def cpu_flags() -> List[str]:
    if armcpu.emulated(read_text("/proc/cpuinfo") or ""):
        return []  # the host's flags, not this machine's
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
        "cpu_clusters": [c.to_dict() for c in cpu_clusters()],
        "logical_cpus": os.cpu_count(),
        "memory_gib": memory_gib(),
        "versions": versions(),
    }


_FACTS: Dict[str, Any] = {}


def fingerprint(
    threads: Optional[int] = None, cpus: Optional[List[int]] = None, cluster: Optional[str] = None
) -> Dict[str, Any]:
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
            "cpu_cluster": cluster,  # --cpus big / little: pinned_cpus is that cluster here
            "governor": governor(),
            "thread_env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        }
    )
    return env
