"""ARM CPUs as Linux describes them: each core's type from its MIDR fields in /proc/cpuinfo
(implementer / part), big.LITTLE clusters with their maximum clocks (cpufreq), the SIMD features,
and the FMA width of each core type. Also tells when the kernel's cpuinfo contradicts the
architecture this process runs as (qemu-user shows the host's cpuinfo), so nobody reports the
host's CPU for an emulated board.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

EMULATED = "emulated, CPU unknown"
CPUFREQ_MAX = "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq"


@dataclass(frozen=True)
class CoreType:
    name: str
    fp32_per_cycle: int  # FLOP per cycle per core: 2 (FMA) x fp32 lanes issued per cycle
    pipes: str  # the assumption behind the rate


def _core(name: str, per_cycle: int) -> CoreType:
    pipes = {
        8: "2x64-bit NEON FMA pipes (128-bit ops at half rate)",
        16: "2x128-bit NEON FMA pipes",
        32: "4x128-bit NEON (or 2x256-bit SVE) FMA pipes",
    }[per_cycle]
    return CoreType(name, per_cycle, pipes)


ARM = 0x41
SOFTWARE = 0x00  # MIDR implementer reserved for software use: an emulator's made-up CPU
# (MIDR implementer, part) -> core type; the rates follow each core's software optimization guide
CORE_TYPES: Dict[Tuple[int, int], CoreType] = {
    (ARM, 0xD03): _core("Cortex-A53", 8),
    (ARM, 0xD04): _core("Cortex-A35", 8),
    (ARM, 0xD05): _core("Cortex-A55", 8),
    (ARM, 0xD07): _core("Cortex-A57", 8),
    (ARM, 0xD08): _core("Cortex-A72", 16),
    (ARM, 0xD09): _core("Cortex-A73", 8),
    (ARM, 0xD0A): _core("Cortex-A75", 8),
    (ARM, 0xD0B): _core("Cortex-A76", 16),
    (ARM, 0xD0C): _core("Neoverse N1", 16),
    (ARM, 0xD0D): _core("Cortex-A77", 16),
    (ARM, 0xD40): _core("Neoverse V1", 32),
    (ARM, 0xD41): _core("Cortex-A78", 16),
    (ARM, 0xD42): _core("Cortex-A78AE", 16),
    (ARM, 0xD44): _core("Cortex-X1", 32),
    (ARM, 0xD46): _core("Cortex-A510", 8),
    (ARM, 0xD47): _core("Cortex-A710", 16),
    (ARM, 0xD48): _core("Cortex-X2", 32),
    (ARM, 0xD49): _core("Neoverse N2", 16),
    (ARM, 0xD4B): _core("Cortex-A78C", 16),
    (ARM, 0xD4D): _core("Cortex-A715", 16),
    (ARM, 0xD4E): _core("Cortex-X3", 32),
    (ARM, 0xD4F): _core("Neoverse V2", 32),
    (0x4E, 0x004): _core("NVIDIA Carmel", 16),
}
IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}
SIMD_FEATURES = ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "svei8mm", "svebf16", "sme")
_ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv8l", "armv6l")


@dataclass(frozen=True)
class ArmCpu:
    """One logical CPU: its index, MIDR fields and features."""

    index: int
    implementer: int
    part: int
    features: FrozenSet[str]

    @property
    def core(self) -> Optional[CoreType]:
        return CORE_TYPES.get((self.implementer, self.part))

    @property
    def name(self) -> str:
        core = self.core
        if core is not None:
            return core.name
        vendor = IMPLEMENTERS.get(self.implementer, "implementer 0x%02x" % self.implementer)
        return "%s core 0x%03x" % (vendor, self.part)


@dataclass(frozen=True)
class Cluster:
    """CPUs of one core type at one maximum clock (a big.LITTLE cluster)."""

    name: str
    core: Optional[CoreType]
    cpus: Tuple[int, ...]
    max_ghz: Optional[float]
    features: FrozenSet[str]

    def describe(self) -> str:
        clock = " @ %.2f GHz" % self.max_ghz if self.max_ghz else ""
        return "%dx %s%s" % (len(self.cpus), self.name, clock)

    def to_dict(self) -> Dict[str, object]:
        return {
            "core": self.name,
            "cpus": list(self.cpus),
            "max_ghz": self.max_ghz,
            "fp32_flop_per_cycle": self.core.fp32_per_cycle if self.core else None,
            "simd": [f for f in SIMD_FEATURES if f in self.features],
        }


def processor_blocks(text: str) -> List[Dict[str, str]]:
    """/proc/cpuinfo as one dict per blank-line separated block, keys lower-cased."""
    blocks: List[Dict[str, str]] = []
    cur: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            cur.setdefault(key.strip().lower(), value.strip())
    if cur:
        blocks.append(cur)
    return blocks


def _hex(value: Optional[str]) -> Optional[int]:
    try:
        return int(value or "", 16)
    except ValueError:
        return None


def arm_cpus(text: str) -> List[ArmCpu]:
    """The logical CPUs that cpuinfo describes by MIDR fields (empty for an x86 cpuinfo)."""
    out = []
    for block in processor_blocks(text):
        implementer, part = _hex(block.get("cpu implementer")), _hex(block.get("cpu part"))
        index = block.get("processor", "")
        if implementer is None or part is None or not index.isdigit():
            continue
        out.append(ArmCpu(int(index), implementer, part, frozenset(block.get("features", "").split())))
    return out


def read_max_khz(cpu: int) -> Optional[int]:
    try:
        with open(CPUFREQ_MAX % cpu) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def clusters(cpus: List[ArmCpu], max_khz: Callable[[int], Optional[int]] = read_max_khz) -> List[Cluster]:
    """CPUs grouped by core type and maximum clock, slowest first."""
    groups: Dict[Tuple[int, int, Optional[int]], List[ArmCpu]] = {}
    for cpu in cpus:
        groups.setdefault((cpu.implementer, cpu.part, max_khz(cpu.index)), []).append(cpu)
    out = []
    for (_, _, khz), members in groups.items():
        first = members[0]
        features = frozenset.intersection(*(m.features for m in members))
        ghz = round(khz / 1e6, 4) if khz else None
        out.append(Cluster(first.name, first.core, tuple(sorted(m.index for m in members)), ghz, features))
    return sorted(out, key=_speed)


def _speed(c: Cluster) -> Tuple[int, float, int]:
    return (c.core.fp32_per_cycle if c.core else 0, c.max_ghz or 0.0, -min(c.cpus))


def cluster_cpus(which: str, found: List[Cluster]) -> List[int]:
    """The CPU indices of `big` (every cluster but the slowest core type) or `little` (the slowest)."""
    if which not in ("big", "little"):
        raise ValueError("--cpus %s: expected big, little or a CPU list such as 0,1" % which)
    if len({(_speed(c)[0], _speed(c)[1]) for c in found}) < 2:
        what = " + ".join(c.describe() for c in found) or "no ARM core types in /proc/cpuinfo"
        raise ValueError("--cpus %s needs a big.LITTLE CPU, this one has one kind of core (%s)" % (which, what))
    slowest = _speed(found[0])[:2]
    chosen = [c for c in found if (_speed(c)[:2] == slowest) == (which == "little")]
    return sorted(i for c in chosen for i in c.cpus)


def emulated(text: str, machine: Optional[str] = None) -> bool:
    """True when cpuinfo cannot be this machine's CPU: it describes another architecture than this
    process runs as (qemu-user before 8 passes the host's cpuinfo through), or every core has MIDR
    implementer 0x00, which the Arm architecture reserves for software use (qemu-user 8 and later
    make up such a cpuinfo: part 0x051, its "max" CPU, with every feature it emulates)."""
    machine = (machine or platform.machine()).lower()
    blocks = processor_blocks(text)
    arm_info = any("cpu implementer" in b for b in blocks)
    x86_info = any("vendor_id" in b or "flags" in b for b in blocks)
    if machine in _ARM_MACHINES:
        if x86_info and not arm_info:
            return True
        cpus = arm_cpus(text)
        return bool(cpus) and all(c.implementer == SOFTWARE for c in cpus)
    if machine in ("x86_64", "amd64", "i686", "i386"):
        return arm_info and not x86_info
    return False


def emulated_model(machine: str) -> str:
    return "%s (%s process under emulation; /proc/cpuinfo is the host's or made up)" % (EMULATED, machine)


def describe(found: List[Cluster]) -> str:
    """'4x Cortex-A55 @ 1.80 GHz + 4x Cortex-A76 @ 2.35 GHz', in CPU order."""
    return " + ".join(c.describe() for c in sorted(found, key=lambda c: min(c.cpus)))
