"""`bench devices show|tune|reset` operations on a sysfs/procfs tree the test builds (this VM has no
cpufreq, no intel_pstate and no boost switch; its real ASLR setting must not be touched by a test),
and the root check."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from effbench.core import tuning
from effbench.core.cell import measure_cell
from effbench.core.probes.base import ROOT_ENV
from effbench.core.settings import MeasureSettings
from tests.core.test_probes import _Idle


def _write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n")
    return p


@pytest.fixture
def laptop(tmp_path):
    for cpu in (0, 1):
        d = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        _write(tmp_path, f"{d}/scaling_governor", "powersave")
        _write(tmp_path, f"{d}/scaling_min_freq", "800000")
        _write(tmp_path, f"{d}/scaling_max_freq", "3000000")
        _write(tmp_path, f"{d}/cpuinfo_max_freq", "3600000")
    _write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "0")
    _write(tmp_path, "proc/sys/kernel/randomize_va_space", "0")
    return tmp_path


def _read(root: Path, rel: str) -> str:
    return (root / rel).read_text().strip()


def test_show_says_what_moves_numbers_and_what_to_change(laptop):
    rows = {r["name"]: r for r in tuning.show(str(laptop))}
    assert "performance" in rows["cpu governor"]["advice"] and "powersave" in rows["cpu governor"]["advice"]
    assert rows["turbo/boost"]["advice"] and rows["ASLR"]["advice"] and rows["frequency limits"]["advice"]
    empty = {r["name"]: r for r in tuning.show(str(laptop / "nothing-here"))}
    assert not empty["cpu governor"]["present"] and empty["cpu governor"]["advice"] is None


def test_tune_sets_what_it_may_and_reset_restores_it(laptop):
    done = tuning.tune(str(laptop))
    assert not done["errors"] and len(done["changed"]) == 2 + 1 + 4 + 1  # governors, turbo, limits, ASLR
    assert _read(laptop, "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor") == "performance"
    assert _read(laptop, "sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq") == "3600000"
    assert _read(laptop, "sys/devices/system/cpu/intel_pstate/no_turbo") == "1"
    assert all(r["advice"] is None for r in tuning.show(str(laptop)) if r["name"] != "other load")
    summary = tuning.tuned_summary(str(laptop))
    assert summary["tuned"] is True and summary["settings"] == 8
    tuning.tune(str(laptop))  # a second tune keeps the values from before the first
    back = tuning.reset(str(laptop))
    assert back["was_tuned"] and not back["errors"]
    assert _read(laptop, "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor") == "powersave"
    assert _read(laptop, "sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq") == "800000"
    assert _read(laptop, "proc/sys/kernel/randomize_va_space") == "0"
    assert tuning.tuned_summary(str(laptop)) == {"tuned": False} and not tuning.reset(str(laptop))["was_tuned"]


def test_a_result_records_whether_its_device_was_tuned(laptop, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(laptop))
    settings = MeasureSettings(runtime="null", input_shape=[1], warmup_s=0.0, duration_s=0.02, min_iters=3)
    assert measure_cell(_Idle, settings, {"input": np.zeros(1)}).telemetry["tuning"] == {"tuned": False}
    tuning.tune(str(laptop))
    assert measure_cell(_Idle, settings, {"input": np.zeros(1)}).telemetry["tuning"]["tuned"] is True


@pytest.mark.parametrize("command", ["tune", "reset"])
def test_tune_and_reset_without_root_are_one_line_exit_2(command, monkeypatch):
    # The tests run as root and the interpreter lives under /root (mode 0700): no other user can
    # start it here, so the effective uid is what is faked.
    from effbench.commands.devices import app

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    r = CliRunner().invoke(app, [command])
    assert r.exit_code == 2
    assert "needs root" in r.output and f"sudo bench devices {command}" in r.output and "Traceback" not in r.output
