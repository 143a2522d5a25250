"""RAPL wraparound and zone discovery over a recorded powercap tree, and the NVML meter's behaviour
where there is no NVIDIA driver.

The powercap tree is written into a temporary directory with the file layout and values a real
/sys/class/powercap has (recorded input); the RAPL code reads it unmodified.
"""

import pytest

from effbench.backends import nvml
from effbench.backends.cuda_util import match_uuid, normalize_uuid
from effbench.harness.config import RunConfig
from effbench.harness.meters import energy, rapl

from .test_energy import plan_of


def write_zone(root, name, label, energy_uj, max_uj=1000):
    z = root / name
    z.mkdir(parents=True, exist_ok=True)
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_wrap_delta():
    assert rapl.wrap_delta(100, 250, 1000) == 150
    assert rapl.wrap_delta(900, 100, 1000) == 200  # 100 to the wrap, 100 after it
    assert rapl.wrap_delta(500, 500, 1000) == 0


def test_packages_are_found_and_subzones_left_out(tmp_path):
    write_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    write_zone(tmp_path, "intel-rapl:1", "package-1", 20)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 5)  # inside package-0 already
    (tmp_path / "intel-rapl-mmio:0").mkdir()
    domains, reason = rapl.find_domains(tmp_path)
    assert reason is None
    assert [d.name for d in domains] == ["package-0", "package-1"]


def test_the_meter_accumulates_across_a_wraparound(tmp_path):
    z0 = write_zone(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=1000)
    z1 = write_zone(tmp_path, "intel-rapl:1", "package-1", 100, max_uj=1000)
    meter, reason = rapl.open_meter(tmp_path)
    assert reason is None and meter.read_power_mw() is None
    start = meter.read_energy_mj()
    # recorded readings: package 0 wraps (900 -> 950 -> 30), package 1 climbs (100 -> 400 -> 700)
    for e0, e1 in ((950, 400), (30, 700)):
        (z0 / "energy_uj").write_text(f"{e0}\n")
        (z1 / "energy_uj").write_text(f"{e1}\n")
        meter.read_energy_mj()
    total_uj = (1000 - 900 + 30) + (700 - 100)
    assert meter.read_energy_mj() - start == pytest.approx(total_uj / 1000)


def test_unreadable_counters_give_the_rapl_reason(tmp_path):
    assert rapl.find_domains(tmp_path / "missing") == ([], rapl.UNREADABLE)
    assert rapl.find_domains(tmp_path) == ([], rapl.UNREADABLE)  # no zones
    z = tmp_path / "intel-rapl:0"
    z.mkdir()
    (z / "max_energy_range_uj").write_text("1000\n")  # energy_uj missing (root-only since Linux 5.10)
    assert rapl.open_meter(tmp_path) == (None, rapl.UNREADABLE)
    assert rapl.UNREADABLE == "energy unavailable: RAPL counters not readable (/sys/class/powercap)"


def test_cpu_cells_without_rapl_say_why(monkeypatch, tmp_path):
    monkeypatch.setattr(rapl, "POWERCAP", tmp_path)
    cfg = plan_of(RunConfig(model="m", backend="torch", device="cpu"))
    assert energy.measure_energy(None, cfg) == {"available": False, "reason": rapl.UNREADABLE}


def test_cpu_cells_with_rapl_measure_package_energy(monkeypatch, tmp_path):
    """Windows over a recorded powercap tree whose counter advances with the (virtual) workload."""
    from .recorded import RecordedMeter

    z = write_zone(tmp_path, "intel-rapl:0", "package-0", 0, max_uj=10**12)
    meter, _ = rapl.open_meter(tmp_path)
    clock = RecordedMeter(power=None, energy=None)
    meter.clock, meter.sleep = clock.clock, clock.sleep
    monkeypatch.setattr(energy, "open_meter", lambda device: (meter, None))
    uj = [0]

    class Session:
        runtime_info = {}

        def timed_loop(self, n, out, offset=0):  # 65 W package, 1/128 s per inference
            clock.advance(n / 128)
            uj[0] += int(65 * n / 128 * 1e6)
            (z / "energy_uj").write_text(f"{uj[0]}\n")

    cfg = plan_of(
        RunConfig(
            model="m",
            backend="torch",
            device="cpu",
            batch_size=2,
            energy_window_s=2.0,
            options={"idle_s": "0", "energy": "1"},
        )
    )
    out = energy.measure_energy(Session(), cfg)
    assert out["available"] and out["meter"] == "rapl" and out["cross_check"] is None
    assert out["joules_per_image"] == pytest.approx(65 / 128 / 2, rel=1e-6)
    assert out["cpu"]["domains"] == ["package-0"]


# --- NVML ----------------------------------------------------------------------------------------


def test_uuid_spellings_match():
    raw = bytes(range(16))
    nvml_text = "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"

    class CUuuid:  # torch's _CUuuid carries the 16 raw bytes
        bytes = raw

    assert normalize_uuid(CUuuid()) == raw.hex() == normalize_uuid(nvml_text)
    assert normalize_uuid(nvml_text.encode()) == raw.hex()
    assert normalize_uuid("not-a-uuid") == ""
    others = ["GPU-ffffffff-0405-0607-0809-0a0b0c0d0e0f", nvml_text.lower()]
    assert match_uuid(CUuuid(), others) == 1  # by UUID, whatever the index
    assert match_uuid(None, others) is None


def _nvml_usable() -> bool:
    mod, reason = nvml.init()
    if mod is not None:
        mod.nvmlShutdown()
    return mod is not None


@pytest.mark.skipif(_nvml_usable(), reason="an NVIDIA driver is present: the no-driver path cannot be shown here")
def test_no_nvidia_driver_gives_the_reason():
    assert nvml.init() == (None, "energy unavailable: no NVIDIA driver")
    assert nvml.open_meter("cuda:0") == (None, "energy unavailable: no NVIDIA driver")
    cfg = plan_of(RunConfig(model="m", backend="torch", device="cuda:0"))
    assert energy.measure_energy(None, cfg) == {"available": False, "reason": "energy unavailable: no NVIDIA driver"}
    assert nvml.memory_for_cuda_device(0) is None
