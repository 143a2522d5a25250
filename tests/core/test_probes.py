"""Telemetry probes and the thermal gate. This VM exposes no thermal zones, no hwmon sensors, no
cpufreq and no powercap, so the probes read a sysfs tree each test builds (the layout the kernel,
an Android phone and a Jetson give), and the real tree is checked for what it does have."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from effbench.core.cell import measure_cell
from effbench.core.probes import PROBES, Telemetry, gate, summary
from effbench.core.probes.base import ROOT_ENV
from effbench.core.probes.cpufreq import CpuFreq
from effbench.core.probes.hwmon import Hwmon
from effbench.core.probes.jetson import Jetson
from effbench.core.probes.thermal import ThermalZones, zone_kind
from effbench.core.session import Session
from effbench.core.settings import MeasureSettings


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n")


def _zone(root: Path, i: int, kind: str, milli: int) -> Path:
    _write(root, f"sys/class/thermal/thermal_zone{i}/type", kind)
    _write(root, f"sys/class/thermal/thermal_zone{i}/temp", str(milli))
    return root / f"sys/class/thermal/thermal_zone{i}/temp"


@pytest.fixture
def board(tmp_path):
    """A phone-like SoC on a Jetson-like board: named zones, a hwmon chip, two cores' cpufreq."""
    _zone(tmp_path, 0, "cpu-0-0-usr", 45_000)
    _zone(tmp_path, 1, "skin-therm", 38_500)
    _zone(tmp_path, 2, "GPU-therm", 51_000)
    _zone(tmp_path, 10, "battery", 31_000)
    _write(tmp_path, "sys/class/thermal/thermal_zone3/type", "broken")  # a zone that cannot be read
    _write(tmp_path, "sys/class/thermal/thermal_zone3/temp", "N/A")
    _write(tmp_path, "sys/class/hwmon/hwmon0/name", "coretemp")
    _write(tmp_path, "sys/class/hwmon/hwmon0/temp1_input", "56000")
    _write(tmp_path, "sys/class/hwmon/hwmon0/temp1_label", "Package id 0")
    _write(tmp_path, "sys/class/hwmon/hwmon0/temp2_input", "52000")
    for cpu, cur in ((0, 1_800_000), (1, 1_200_000)):
        d = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        _write(tmp_path, f"{d}/scaling_governor", "schedutil")
        _write(tmp_path, f"{d}/scaling_cur_freq", str(cur))
        _write(tmp_path, f"{d}/scaling_min_freq", "600000")
        _write(tmp_path, f"{d}/scaling_max_freq", "2400000")
        _write(tmp_path, f"{d}/cpuinfo_max_freq", "2400000")
    _write(tmp_path, "etc/nv_tegra_release", "# R36 (release), REVISION: 4.0")
    _write(tmp_path, "sys/class/devfreq/17000000.ga10b/cur_freq", "918000000")
    _write(tmp_path, "sys/class/devfreq/17000000.ga10b/max_freq", "1300500000")
    _write(tmp_path, "sys/class/devfreq/17000000.ga10b/device/load", "734")
    return tmp_path


def test_each_probe_reads_the_tree_it_is_given(board):
    thermal = ThermalZones(str(board))
    assert thermal.available()
    zones = thermal.read()["zones"]
    assert set(zones) == {"cpu-0-0-usr", "skin-therm", "GPU-therm", "battery"}  # the unreadable zone is left out
    assert zones["GPU-therm"] == {"zone": "thermal_zone2", "temp_c": 51.0, "kind": "gpu"}
    assert zones["battery"]["zone"] == "thermal_zone10" and zones["skin-therm"]["kind"] == "skin"
    assert Hwmon(str(board)).read()["temps_c"] == {"coretemp/Package id 0": 56.0, "coretemp/temp2": 52.0}
    cpu = CpuFreq(str(board)).read()
    assert cpu["governors"] == ["schedutil"] and cpu["cur_mhz_mean"] == 1500.0
    assert cpu["cores"]["1"] == {
        "governor": "schedutil",
        "cur_mhz": 1200.0,
        "min_mhz": 600.0,
        "max_mhz": 2400.0,
        "hw_max_mhz": 2400.0,
    }
    jetson = Jetson(str(board)).read()
    assert jetson["l4t"].startswith("# R36") and jetson["gpu_cur_mhz"] == 918.0 and jetson["gpu_load_pct"] == 73.4


def test_telemetry_snapshot_hottest_and_summary(board):
    t = Telemetry(str(board))
    assert {p.name for p in t.probes} >= {"thermal", "hwmon", "cpufreq", "load", "jetson"}
    snap = t.snapshot()
    assert t.hottest(snap) == ("coretemp/Package id 0", 56.0)
    s = summary(snap, t)
    assert s["hottest_c"] == 56.0 and s["cpu_mhz"] == 1500.0 and s["gpu_mhz"] == 918.0 and "load1" in s


def test_an_empty_tree_gives_every_probe_a_reason(tmp_path):
    t = Telemetry(str(tmp_path))
    assert {"thermal", "hwmon", "cpufreq", "jetson"} <= set(t.unavailable)
    assert all(t.unavailable.values()) and t.hottest() is None


def test_the_real_tree_reports_what_it_has():
    t = Telemetry()
    names = {p.name for p in t.probes} | set(t.unavailable)
    assert names == {cls.name for cls in PROBES}
    assert all(t.unavailable.values())  # every missing source says why
    snap = t.snapshot()
    assert "load" in snap  # every Linux has a load average; thermal and cpufreq only where exposed
    for probe in t.probes:
        assert probe.name in snap


def test_zone_names_of_phones_and_boards_are_sorted_into_kinds():
    assert [zone_kind(n) for n in ("x86_pkg_temp", "gpuss-0-usr", "xo-therm", "soc_thermal", "pm8350b_tz")] == [
        "cpu",
        "gpu",
        "skin",
        "soc",
        "other",
    ]


def test_the_gate_waits_until_cool(board):
    zone = board / "sys/class/thermal/thermal_zone0/temp"
    zone.write_text("80000\n")  # the CPU zone is hot; it cools to 40 C after 0.6 s

    def cool():
        time.sleep(0.6)
        zone.write_text("40000\n")

    (board / "sys/class/hwmon").rename(board / "hwmon-away")  # only the zone counts here
    threading.Thread(target=cool, daemon=True).start()
    seen = []
    g = gate.wait_until_cool(Telemetry(str(board)), 60.0, 10.0, lambda *a: seen.append(a), poll_s=0.05)
    assert g["met"] is True and g["start_c"] == 80.0 and g["end_c"] == 51.0  # GPU-therm is now the hottest
    assert 0.5 <= g["waited_s"] < 5 and seen and seen[0][0] == "cooldown" and "cpu-0-0-usr at 80.0 C" in seen[0][2]


def test_the_gate_times_out_as_told(board):
    t0 = time.monotonic()
    g = gate.wait_until_cool(Telemetry(str(board)), 50.0, 0.4, poll_s=0.05)
    assert g["met"] is False and g["end_c"] == 56.0 and 0.4 <= g["waited_s"] < 2 and time.monotonic() - t0 < 2


def test_without_a_sensor_the_gate_says_so_and_goes_on(tmp_path):
    g = gate.wait_until_cool(Telemetry(str(tmp_path)), 45.0, 60.0)
    assert "no thermal sensor" in g["skipped"]


def test_implausible_limits_are_refused_with_the_range():
    assert "25-105 C" in gate.check_limit(5.0) and gate.check_limit(45.0) is None and gate.check_limit(None) is None


class _Idle(Session):
    def bind(self, inputs):
        pass

    def run(self):
        pass

    def outputs(self):
        return []


def test_a_cell_records_telemetry_before_and_after_and_the_gate(board, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(board))
    settings = MeasureSettings(
        runtime="null",
        input_shape=[1],
        warmup_s=0.0,
        duration_s=0.05,
        min_iters=5,
        max_start_temp=60.0,
        cooldown_timeout_s=5.0,
    )
    m = measure_cell(_Idle, settings, {"input": np.zeros(1)})
    assert m.telemetry["gate"]["met"] is True and m.telemetry["gate"]["waited_s"] < 1
    before, after = m.telemetry["before"], m.telemetry["after"]
    assert before["thermal"]["zones"]["GPU-therm"]["temp_c"] == 51.0 and after["t"] >= before["t"]
    assert "nvml" in m.telemetry["unavailable"]
    off = measure_cell(_Idle, MeasureSettings(runtime="null", input_shape=[1], duration_s=0.02, telemetry=False), {})
    assert off.telemetry == {}


def test_the_nvml_probe_reads_clocks_temperature_and_throttle_reasons(monkeypatch):
    # No GPU here: a stand-in pynvml module answers the calls the probe makes (GPU runs check the real one)
    import types

    fake = types.ModuleType("pynvml")
    fake.NVML_TEMPERATURE_GPU, fake.NVML_CLOCK_SM, fake.NVML_CLOCK_MEM = 0, 1, 2
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"
    fake.nvmlDeviceGetTemperature = lambda h, sensor: 83
    fake.nvmlDeviceGetClockInfo = lambda h, clock: {1: 1410, 2: 1593}[clock]
    fake.nvmlDeviceGetMaxClockInfo = lambda h, clock: 1980
    fake.nvmlDeviceGetPowerUsage = lambda h: 301_000

    def no_throttle_api(h):
        raise RuntimeError("not supported")

    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x20 | 0x40 | 0x1
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    from effbench.core.probes.nvml import Nvml

    probe = Nvml()
    assert probe.available()
    gpu = probe.read()["gpus"]["0"]
    assert gpu == {
        "temp_c": 83,
        "sm_mhz": 1410,
        "mem_mhz": 1593,
        "max_sm_mhz": 1980,
        "power_w": 301.0,
        "throttle": ["gpu_idle", "sw_thermal", "hw_thermal"],
    }
    assert probe.temperatures(probe.read()) == {"gpu0": 83.0}
    t = Telemetry(probes=(Nvml,))
    s = summary(t.snapshot(), t)
    assert s["gpu_mhz"] == 1410.0 and s["gpu_throttle"] == ["hw_thermal", "sw_thermal"] and s["hottest_c"] == 83.0
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = no_throttle_api  # a field a driver lacks is left out
    assert "throttle" not in probe.read()["gpus"]["0"]
