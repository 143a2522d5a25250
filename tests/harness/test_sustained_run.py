"""The sustained scenario end to end on a real runtime (ONNX Runtime, short windows), stored like
any result; and its bad input: one line, exit 2, before any work."""

from __future__ import annotations

import pytest

from tests.conftest import TINY_CNN, bench, one_line, read_records

NULL = ["--model", "efficientvit_m0", "--backend", "null"]


@pytest.mark.slow
def test_sustained_on_onnxruntime_is_stored_with_its_windows_and_telemetry(tmp_path):
    out, db = tmp_path / "r.json", tmp_path / "r.db"
    r = bench(
        "run", *TINY_CNN, "--backend", "ort", "--scenario", "sustained", "--duration", "1.2s", "--window", "300ms",
        "--warmup", "0.1", "--threads", "1", "--db", db, "--out", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    [rec] = read_records(out)
    s = rec["extra"]["scenario"]
    assert rec["scenario"] == "sustained" and s["window_s"] == 0.3 and len(s["windows"]) == 4
    assert all(w["median_ms"] > 0 and w["p90_ms"] >= w["median_ms"] and w["throughput_per_s"] > 0 for w in s["windows"])
    assert isinstance(s["throttled"], bool) and s["last_first"]["ci95_low"] <= s["last_first"]["ratio"]
    assert "evidence" in s and all("load1" in w["telemetry"] for w in s["windows"])
    t = rec["extra"]["telemetry"]
    assert "load" in t["before"] and "load" in t["after"] and "thermal" in t["unavailable"]  # this VM: no zones
    listed = bench("results", "--db", db, "--format", "json")
    assert listed.returncode == 0 and '"sustained"' in listed.stdout


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--duration", "10x"], ["--duration", "unknown unit 'x'"]),
        (["--scenario", "sustained", "--duration", "60s", "--window", "90s"], ["--window", "fewer than 2 windows"]),
        (["--max-start-temp", "5"], ["--max-start-temp", "25-105 C"]),
        (["--scenario", "sustaind"], ["--scenario", "sustained"]),
        (["--window", "10s"], ["--window", "only --scenario sustained measures in windows"]),
        (["--cooldown", "-3s"], ["--cooldown", "not a positive duration"]),
        (["--scenario", "sustained", "--duration", "10m", "--timeout", "60"], ["--timeout 60 s is shorter", "600 s"]),
    ],
)
def test_bad_sustained_and_gate_input_is_one_line_exit_2(tmp_path, args, needles):
    r = bench("run", *NULL, *args, "--db", tmp_path / "r.db")
    one_line(r, 2, *needles)
    assert not (tmp_path / "r.db").exists()


def test_with_no_thermal_sensor_the_gate_says_so_once_and_the_run_goes_on(tmp_path):
    # this VM exposes no thermal zone and no hwmon sensor: the real "no sensor" case
    out = tmp_path / "r.json"
    r = bench(
        "run", *NULL, "--batch", "1,2", "--duration", "0.05", "--warmup", "0", "--max-start-temp", "45",
        "--no-store", "--out", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    assert r.stdout.count("thermal gate: no thermal sensor on cpu: the gate was off for 2 cell(s)") == 1
    recs = read_records(out)
    assert len(recs) == 2 and all("no thermal sensor" in rec["extra"]["telemetry"]["gate"]["skipped"] for rec in recs)
    assert not any("thermal gate" in w for rec in recs for w in rec["warnings"])
