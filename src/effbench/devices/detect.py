"""Derive this machine's CPU peaks: usable cores x clock x FLOP per cycle for its vector ISA.

Per-cycle rates are architectural assumptions (FMA pipes x vector width); each one is spelled
out in the peak's source string so a reader can check it. Memory bandwidth cannot be read from
cpuinfo: it stays empty until `bench devices calibrate` measures it.
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from effbench.core import armcpu
from effbench.core.armcpu import Cluster
from effbench.devices.catalog import DeviceSpec, Peak

SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Rate:
    """FLOP (or int8 OPS) per cycle per core, and the assumption behind it."""

    per_cycle: int
    why: str


@dataclass(frozen=True)
class CpuInfo:
    model: str
    vendor: str
    usable_cpus: int  # len(os.sched_getaffinity(0)): what this process may run on
    logical_cpus: int  # os.cpu_count()
    cores: int  # physical cores among the usable CPUs (SMT siblings share FMA units)
    cores_how: str
    ghz: float | None
    clock_how: str
    flags: frozenset[str] = field(repr=False)
    rates: dict[str, Rate] = field(default_factory=dict)
    clusters: tuple[Cluster, ...] = ()  # ARM: core types with their own clocks and FMA widths

    @property
    def clock_is_max(self) -> bool:
        """True when the clock is the CPU's own maximum (cpufreq), so the peak is an upper bound."""
        return self.clock_how.startswith("cpufreq")

    def peak(self, precision: str) -> float | None:
        rate = self.rates.get(precision)
        if rate is None or self.ghz is None:
            return None
        if self.clusters and all(c.max_ghz for c in self.clusters):
            total = 0.0
            for c in self.clusters:
                per_cycle = _arm_rates(c.core, c.features).get(precision)
                total += len(c.cpus) * (c.max_ghz or 0.0) * 1e9 * (per_cycle.per_cycle if per_cycle else 0)
            return total
        return self.cores * self.ghz * 1e9 * rate.per_cycle


# --- /proc/cpuinfo and /sys --------------------------------------------------------------


parse_cpuinfo = armcpu.processor_blocks


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _physical_cores(usable: set[int], blocks: list[dict[str, str]]) -> tuple[int, str]:
    ids = set()
    for cpu in usable:
        topo = SYS_CPU / f"cpu{cpu}" / "topology"
        core, pkg = _read(topo / "core_id"), _read(topo / "physical_package_id")
        if core is None or pkg is None:
            break
        ids.add((pkg, core))
    else:
        if ids:
            how = "usable cores (sched_getaffinity)"
            if len(ids) < len(usable):
                how += f", {len(usable)} logical CPUs on {len(ids)} physical cores (SMT not counted)"
            return len(ids), how
    # No topology in /sys: use the siblings / cpu cores ratio from cpuinfo.
    first = blocks[0] if blocks else {}
    try:
        per_core = max(1, int(first["siblings"]) // int(first["cpu cores"]))
    except (KeyError, ValueError, ZeroDivisionError):
        per_core = 1
    return max(1, len(usable) // per_core), f"usable CPUs (sched_getaffinity) / {per_core} thread(s) per core"


def _clock(blocks: list[dict[str, str]], model: str) -> tuple[float | None, str]:
    khz = _read(SYS_CPU / "cpu0" / "cpufreq" / "cpuinfo_max_freq")
    if khz and khz.isdigit():
        return int(khz) / 1e6, "cpufreq cpuinfo_max_freq (the boost clock; all-core vector clocks run lower)"
    mhz = [float(b["cpu mhz"]) for b in blocks if _is_float(b.get("cpu mhz"))]
    if mhz:
        return max(mhz) / 1e3, (
            "'cpu MHz' in /proc/cpuinfo (current or, under a hypervisor, nominal clock; "
            "boost clocks can be higher, so measured peaks may exceed this one)"
        )
    m = re.search(r"@\s*([\d.]+)\s*GHz", model, re.I)
    if m:
        return float(m.group(1)), "'@ GHz' in the model name (base clock)"
    return None, "unknown (no cpufreq, no 'cpu MHz', no '@ GHz' in the model name)"


def _int(s: str | None) -> int | None:
    try:
        return int(s)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _is_float(s: str | None) -> bool:
    try:
        float(s)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


# --- per-cycle rates ---------------------------------------------------------------------


def isa_rates(
    vendor: str,
    family: int | None,
    model_id: int | None,
    model_name: str,
    flags: set[str] | frozenset[str],
    arm_part: int | None = None,
) -> dict[str, Rate]:
    """Per-core per-cycle peak rates by precision for a CPU described by cpuinfo fields."""
    if "asimd" in flags or arm_part is not None:
        return _arm_rates(armcpu.CORE_TYPES.get((armcpu.ARM, arm_part or 0)), flags)
    fp32 = _x86_fp32(vendor, family, model_id, model_name, flags)
    if fp32 is None:
        return {}
    rates = {"fp32": fp32}
    if "avx512_fp16" in flags:
        rates["fp16"] = Rate(2 * fp32.per_cycle, "AVX512-FP16: twice the fp32 lanes, assumed at the FMA rate")
    if "amx_bf16" in flags:
        rates["bf16"] = Rate(1024, "AMX-BF16: 512 bf16 MACs per cycle per core")
    elif "avx512_bf16" in flags:
        rates["bf16"] = Rate(
            2 * fp32.per_cycle, "AVX512-BF16 VDPBF16PS: 2 bf16 products per fp32 lane, assumed at the FMA rate"
        )
    if "amx_int8" in flags:
        rates["int8"] = Rate(2048, "AMX-INT8: 1024 int8 MACs per cycle per core")
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        rates["int8"] = Rate(4 * fp32.per_cycle, "VNNI VPDPBUSD: 4 int8 MACs per 32-bit lane, assumed at the FMA rate")
    return rates


def _x86_fp32(vendor: str, family: int | None, model_id: int | None, model_name: str, flags) -> Rate | None:
    amd = "AMD" in vendor.upper()
    if "avx512f" in flags:
        if amd and family == 0x19:
            return Rate(32, "AVX-512 on Zen 4: 2x256-bit FMA pipes, 512-bit ops take two passes")
        if amd and family is not None and family >= 0x1A:
            return Rate(64, "AVX-512 on Zen 5: assumed 2 full 512-bit FMA pipes (mobile Zen 5 has 256-bit pipes: half)")
        if not amd and "XEON" in model_name.upper():
            return Rate(
                64,
                "AVX-512 on Xeon: assumed 2 FMA units (some Skylake/Cascade Lake Bronze/Silver/Gold 5xxx have 1: half)",
            )
        return Rate(32, "AVX-512 with one 512-bit FMA unit (client cores) assumed")
    if "avx2" in flags and "fma" in flags:
        if amd and family == 0x17 and model_id is not None and model_id < 0x30:
            return Rate(16, "AVX2 on Zen 1/Zen+: 2x128-bit FMA pipes, 256-bit ops take two passes")
        return Rate(32, "AVX2+FMA: 2x256-bit FMA pipes")
    if "avx" in flags:
        return Rate(16, "AVX without FMA: one 256-bit add + one 256-bit multiply per cycle")
    if "sse2" in flags:
        return Rate(8, "SSE2: one 128-bit add + one 128-bit multiply per cycle")
    return None


def _arm_rates(core: armcpu.CoreType | None, flags) -> dict[str, Rate]:
    per_cycle = core.fp32_per_cycle if core else 16
    why = f"{core.name}: {core.pipes}" if core else "assumed (unknown core): 2x128-bit NEON FMA pipes"
    rates = {"fp32": Rate(per_cycle, why)}
    if "asimdhp" in flags or "fphp" in flags:
        rates["fp16"] = Rate(2 * per_cycle, why + ", FP16 at twice the fp32 lanes")
    if "bf16" in flags:
        rates["bf16"] = Rate(2 * per_cycle, why + ", BFDOT: 2 bf16 products per fp32 lane")
    if "i8mm" in flags:
        rates["int8"] = Rate(8 * per_cycle, why + ", SMMLA: 8 int8 MACs per 32-bit lane")
    elif "asimddp" in flags:
        rates["int8"] = Rate(4 * per_cycle, why + ", SDOT: 4 int8 MACs per 32-bit lane")
    return rates


# --- putting it together -----------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    return describe_cpu(_read(Path("/proc/cpuinfo")) or "", _usable_cpus())


def describe_cpu(
    text: str,
    usable: set[int],
    machine: str | None = None,
    max_khz: Callable[[int], int | None] = armcpu.read_max_khz,
) -> CpuInfo:
    """A CpuInfo from a /proc/cpuinfo text and the CPUs this process may use."""
    machine = machine or platform.machine()
    if armcpu.emulated(text, machine):
        return CpuInfo(
            model=armcpu.emulated_model(machine),
            vendor="unknown",
            usable_cpus=len(usable),
            logical_cpus=os.cpu_count() or len(usable),
            cores=len(usable),
            cores_how="usable CPUs (sched_getaffinity)",
            ghz=None,
            clock_how="unknown (emulated)",
            flags=frozenset(),
        )
    arm = [c for c in armcpu.arm_cpus(text) if c.index in usable]
    if arm:
        return _arm_info(arm, usable, max_khz)
    blocks = parse_cpuinfo(text)
    first = blocks[0] if blocks else {}
    flags = frozenset((first.get("flags") or first.get("features") or "").split())
    model = _model_name(blocks)
    family, model_id = _int(first.get("cpu family")), _int(first.get("model"))
    cores, cores_how = _physical_cores(usable, blocks)
    ghz, clock_how = _clock(blocks, model)
    vendor = first.get("vendor_id", machine)
    return CpuInfo(
        model=model,
        vendor=vendor,
        usable_cpus=len(usable),
        logical_cpus=os.cpu_count() or len(usable),
        cores=cores,
        cores_how=cores_how,
        ghz=ghz,
        clock_how=clock_how,
        flags=flags,
        rates=isa_rates(vendor, family, model_id, model, flags),
    )


def _arm_info(arm: list[armcpu.ArmCpu], usable: set[int], max_khz: Callable[[int], int | None]) -> CpuInfo:
    found = armcpu.clusters(arm, max_khz)
    big = found[-1]
    clocks = [c.max_ghz for c in found if c.max_ghz]
    vendor = armcpu.IMPLEMENTERS.get(arm[0].implementer, f"implementer 0x{arm[0].implementer:02x}")
    return CpuInfo(
        model=armcpu.describe(found),
        vendor=vendor,
        usable_cpus=len(usable),
        logical_cpus=os.cpu_count() or len(usable),
        cores=len(arm),
        cores_how="usable CPUs (sched_getaffinity); ARM cores run one thread each",
        ghz=max(clocks) if clocks else None,
        clock_how="cpufreq cpuinfo_max_freq per cluster" if clocks else "unknown (no cpufreq on this machine)",
        flags=big.features,
        rates=_arm_rates(big.core, big.features),
        clusters=tuple(found),
    )


def _model_name(blocks: list[dict[str, str]]) -> str:
    for b in blocks:
        for key in ("model name", "model", "hardware", "processor"):
            v = b.get(key, "")
            if v and not v.isdigit():  # "processor : 0" on x86 is an index, not a name
                return v
    return platform.processor() or platform.machine() or "unknown CPU"


def _derivation(info: CpuInfo, precision: str, rate: Rate) -> str:
    unit = "OPS" if precision == "int8" else "FLOP"
    if info.clusters and all(c.max_ghz for c in info.clusters):
        terms = []
        for c in info.clusters:
            r = _arm_rates(c.core, c.features).get(precision)
            terms.append(
                f"{len(c.cpus)} {c.name} x {c.max_ghz:.2f} GHz x {r.per_cycle if r else 0} {unit}/cycle"
                f" ({r.why if r else 'no such instructions'})"
            )
        return "detected: " + " + ".join(terms) + f"; clock = {info.clock_how}"
    return (
        f"detected: {info.cores} cores x {info.ghz:.2f} GHz x {rate.per_cycle} {unit}/cycle "
        f"({rate.why}; cores = {info.cores_how}; clock = {info.clock_how})"
    )


def detect_cpu(name: str = "local-cpu") -> DeviceSpec:
    """This machine's CPU as a catalog entry, with the derivation in each source string."""
    info = cpu_info()
    peaks = {}
    for precision, rate in info.rates.items():
        value = info.peak(precision)
        if value:
            peaks[precision] = Peak(value=value, source=_derivation(info, precision, rate))
    return DeviceSpec(
        name=name,
        kind="cpu",
        detect=True,
        description=f"{info.model} ({info.cores} usable cores)",
        peak_flops=peaks,
        memory_bandwidth=None,
        detected={
            "model": info.model,
            "vendor": info.vendor,
            "cores": info.cores,
            "cores_how": info.cores_how,
            "usable_cpus": info.usable_cpus,
            "logical_cpus": info.logical_cpus,
            "ghz": info.ghz,
            "clock_how": info.clock_how,
            "rates": {p: {"per_cycle": r.per_cycle, "why": r.why} for p, r in info.rates.items()},
            "clusters": [c.to_dict() for c in info.clusters],
            "memory_bandwidth": "not derivable from cpuinfo: run `bench devices calibrate --save`",
        },
    )
