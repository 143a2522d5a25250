"""ARM CPUs described from their /proc/cpuinfo (test data in data/cpuinfo, see its README): core
types from MIDR fields, big.LITTLE clusters and clocks, SIMD features, the roofline peak they give,
the catalog entries that agree with it, "emulated, CPU unknown" under qemu-user, and --cpus big|little."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from effbench.core import armcpu, cell
from effbench.core.fingerprint import cpu_model, fingerprint
from effbench.devices.catalog import load_catalog
from effbench.devices.detect import describe_cpu, detect_cpu
from effbench.harness.config import RunConfig
from effbench.harness.scheduler import run_cells
from tests.conftest import TINY_CNN, bench, one_line
from tests.devices.cells import SHORT, TINY

DATA = Path(__file__).parent / "data" / "cpuinfo"
RK3588_KHZ = {**dict.fromkeys(range(4), 1_800_000), **dict.fromkeys(range(4, 8), 2_352_000)}


def text(name: str) -> str:
    return (DATA / name).read_text()


def khz(value: int | None):
    return lambda cpu: value


@pytest.fixture(scope="module")
def shipped():
    return load_catalog(str(Path(__file__).parents[2] / "devices.yaml"))


def test_raspberry_pi_5_is_four_cortex_a76_and_its_peak_is_the_catalogs(shipped):
    info = describe_cpu(text("raspberry-pi-5.txt"), set(range(4)), "aarch64", khz(2_400_000))
    assert info.model == "4x Cortex-A76 @ 2.40 GHz" and info.vendor == "ARM"
    assert info.cores == 4 and info.ghz == 2.4
    assert {"asimd", "asimdhp", "asimddp"} <= info.flags and "sve" not in info.flags
    assert info.rates["fp32"].per_cycle == 16 and info.rates["int8"].per_cycle == 64  # SDOT, no i8mm
    assert "bf16" not in info.rates
    for precision in ("fp32", "fp16", "int8"):
        assert info.peak(precision) == pytest.approx(shipped["raspberry-pi-5"].peak(precision))


def test_jetson_orin_cpu_ignores_the_kernels_generic_model_name(shipped):
    info = describe_cpu(text("jetson-agx-orin.txt"), set(range(12)), "aarch64", khz(2_201_600))
    assert info.model == "12x Cortex-A78AE @ 2.20 GHz"  # not "ARMv8 Processor rev 1 (v8l)"
    for precision in ("fp32", "fp16", "int8"):
        assert info.peak(precision) == pytest.approx(shipped["jetson-agx-orin-cpu"].peak(precision), rel=1e-3)
    # a process limited to 4 CPUs gets a third of the peak
    four = describe_cpu(text("jetson-agx-orin.txt"), {0, 1, 2, 3}, "aarch64", khz(2_201_600))
    assert four.peak("fp32") == pytest.approx(info.peak("fp32") / 3)


def test_graviton3_has_sve_i8mm_bf16_and_no_clock_so_no_detected_peak(shipped):
    info = describe_cpu(text("graviton3.txt"), set(range(8)), "aarch64", khz(None))
    assert info.model == "8x Neoverse V1"
    assert {"sve", "i8mm", "bf16", "svei8mm"} <= info.flags
    assert info.rates["fp32"].per_cycle == 32 and "SVE" in info.rates["fp32"].why
    assert info.rates["int8"].per_cycle == 256 and "SMMLA" in info.rates["int8"].why
    assert info.ghz is None and info.peak("fp32") is None  # EC2 has no cpufreq: no guessed clock
    g3 = shipped["graviton3"]
    for precision in ("fp32", "bf16", "int8"):
        assert g3.peak(precision) == pytest.approx(64 * 2.6e9 * info.rates[precision].per_cycle)


def test_big_little_clusters_their_clocks_and_a_peak_summed_per_core_type():
    cpus = armcpu.arm_cpus(text("rk3588.txt"))
    found = armcpu.clusters(cpus, RK3588_KHZ.get)
    assert [(c.name, c.cpus, c.max_ghz) for c in found] == [
        ("Cortex-A55", (0, 1, 2, 3), 1.8),
        ("Cortex-A76", (4, 5, 6, 7), 2.352),
    ]
    assert armcpu.cluster_cpus("little", found) == [0, 1, 2, 3]
    assert armcpu.cluster_cpus("big", found) == [4, 5, 6, 7]
    info = describe_cpu(text("rk3588.txt"), set(range(8)), "aarch64", RK3588_KHZ.get)
    assert info.model == "4x Cortex-A55 @ 1.80 GHz + 4x Cortex-A76 @ 2.35 GHz"
    assert info.peak("fp32") == pytest.approx(4 * 1.8e9 * 8 + 4 * 2.352e9 * 16)
    assert info.peak("int8") == pytest.approx(4 * 1.8e9 * 32 + 4 * 2.352e9 * 64)


def test_cluster_choice_needs_two_kinds_of_core():
    pi5 = armcpu.clusters(armcpu.arm_cpus(text("raspberry-pi-5.txt")), khz(2_400_000))
    with pytest.raises(ValueError, match="one kind of core .4x Cortex-A76"):
        armcpu.cluster_cpus("big", pi5)
    with pytest.raises(ValueError, match="expected big, little"):
        armcpu.cluster_cpus("medium", pi5)


def test_unknown_parts_are_named_by_implementer_not_guessed():
    qualcomm = text("raspberry-pi-5.txt").replace("0x41", "0x51").replace("0xd0b", "0x805")
    assert armcpu.describe(armcpu.clusters(armcpu.arm_cpus(qualcomm), khz(None))) == "4x Qualcomm core 0x805"
    info = describe_cpu(qualcomm, set(range(4)), "aarch64", khz(2_000_000))
    assert info.rates["fp32"].why.startswith("assumed (unknown core)")


def test_x86_cpuinfo_under_an_aarch64_process_is_emulated_cpu_unknown():
    host = Path("/proc/cpuinfo").read_text()
    if not armcpu.emulated(host, "aarch64"):
        pytest.skip("this machine's cpuinfo is not an x86 one")
    info = describe_cpu(host, {0, 1}, "aarch64")
    assert info.model.startswith("emulated, CPU unknown") and not info.rates and not info.flags
    assert info.peak("fp32") is None
    assert not armcpu.emulated(host, "x86_64")
    assert armcpu.emulated(text("raspberry-pi-5.txt"), "x86_64")
    assert not armcpu.emulated(text("raspberry-pi-5.txt"), "aarch64")


def test_qemus_made_up_cpuinfo_is_emulated_cpu_unknown():
    qemu = text("qemu-aarch64.txt")  # what an aarch64 process reads on the emulated board
    assert armcpu.emulated(qemu, "aarch64")
    info = describe_cpu(qemu, {0, 1}, "aarch64")
    assert info.model.startswith("emulated, CPU unknown") and not info.rates and info.peak("fp32") is None


def test_this_machine_is_described_as_itself():
    assert "emulated" not in cpu_model()
    detected = detect_cpu().detected
    assert detected is not None and "emulated" not in detected["model"]
    if not armcpu.arm_cpus(Path("/proc/cpuinfo").read_text()):
        assert fingerprint()["cpu_clusters"] == []


def test_cpus_big_on_a_cpu_with_one_core_type_is_refused_before_work():
    if len(cell.cpu_clusters()) > 1:
        pytest.skip("this machine is big.LITTLE")
    r = bench("run", *TINY_CNN, "--backend", "onnxruntime", "--cpus", "big")
    one_line(r, 2, "--cpus", "big.LITTLE", "one kind of core")
    one_line(bench("run", *TINY_CNN, "--backend", "onnxruntime", "--cpus", "large"), 2, "big / little")


def test_cpus_little_pins_the_cell_and_is_recorded(monkeypatch):
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs two usable CPUs")
    little, big = usable[0], usable[1]
    # A fake for what cannot exist here (a big.LITTLE CPU): this machine's first two usable CPUs
    # stand for a Cortex-A55 and a Cortex-A76; the pinning and the record are real.
    fake = [
        armcpu.Cluster("Cortex-A55", armcpu.CORE_TYPES[(0x41, 0xD05)], (little,), 1.8, frozenset()),
        armcpu.Cluster("Cortex-A76", armcpu.CORE_TYPES[(0x41, 0xD0B)], (big,), 2.4, frozenset()),
    ]
    monkeypatch.setattr(cell, "cpu_clusters", lambda: fake)
    cfg = RunConfig(**TINY, **SHORT, cpus="little")
    try:
        (result,) = run_cells([cfg], isolate=False, show_progress=False)
    finally:
        os.sched_setaffinity(0, usable)  # the cell ran in this process: give pytest its CPUs back
    assert result.status == "ok", result.error
    assert result.cpus == [little] and result.config["cpus"] == "little"
    assert result.env["cpu_cluster"] == "little" and result.env["pinned_cpus"] == [little]
    assert result.env["affinity"] == [little]
