"""One place for defaults: the command line, RunConfig and the measurement core cannot disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from effbench.core.settings import DEFAULTS, MeasureSettings
from effbench.harness.config import RunConfig, parse_duration, parse_int_list, parse_percent
from effbench.harness.defaults import RUN_DEFAULTS


def test_the_command_lines_defaults_are_runconfigs():
    """`bench run` with only --model and --backend is RunConfig's defaults, each read back through its
    flag's parser (a default the parser reads otherwise, or one the generator drops, shows here)."""
    from effbench.commands.run import parse_run_args

    [cell] = parse_run_args("--model m --backend null")
    assert cell.model_dump() == RunConfig(model="m", backend="null").model_dump()
    [cell] = parse_run_args("--model m --backend null --duration 1m --target-ci 2% --cpus 0 --max-drop 1%")
    assert (cell.duration_s, cell.target_ci, cell.cpus, cell.max_drop) == (60.0, 0.02, [0], 1.0)


# Hashes made before the command line was generated from RunConfig: stored results are found again
# (`bench sweep --resume`, the gate's pairing) only while these stay as they are.
STORED_HASHES = [
    ({"model": "efficientvit_m5", "backend": "openvino"}, "0c0ff21916272e70"),
    (
        {"model": "resnet50", "backend": "ort", "batch_size": 8, "threads": 2, "cpus": [0], "precision": "int8"}
        | {"target_ci": 0.01},
        "9ac8931ed1e5852f",
    ),
    ({"model": "m", "backend": "null", "scenario": "sustained", "duration_s": 60, "window_s": 10}, "80651f4ec4154dd0"),
    (
        {"model": "m", "backend": "null", "scenario": "server", "target_qps": 100, "latency_bound_ms": 15},
        "7e02b312d92e13cf",
    ),
    ({"model": "m", "backend": "null", "scenario": "multistream", "samples_per_query": 4}, "47ec738487bb117c"),
    (
        {"model": "m", "backend": "torch", "compile": True, "input_size": 160, "options": {"mode": "max-autotune"}}
        | {"tag": "x", "timeout_s": 30},
        "a178bb022bdb4743",
    ),
    (
        {"model": "m", "backend": "ov", "eval": "/tmp/e", "max_drop": 1.0, "crop_pct": 0.9}
        | {"interpolation": "bicubic", "max_fallback": 5.0},
        "59699c111dfbf3fb",
    ),
]


@pytest.mark.parametrize("fields,stored", STORED_HASHES)
def test_stored_configuration_hashes_do_not_change(fields, stored):
    assert RunConfig(**fields).config_hash() == stored


# the measurement defaults users see: a change here is a change in every result's settings (and in the
# README), made on purpose; RunConfig, the table and the core must all give exactly these
MEASUREMENT_DEFAULTS = {
    "warmup_s": 1.0,
    "warmup_iters": 10,
    "duration_s": 3.0,
    "min_iters": 30,
    "max_iters": 200_000,
    "max_duration_s": 60.0,
    "target_ci": None,
    "threads": None,
    "cpus": None,
    "scenario": "latency",
    "precision": "fp32",
}


def test_every_route_gives_the_documented_defaults():
    cfg = RunConfig(model="m", backend="null")
    core = MeasureSettings(runtime="null", input_shape=[1, 3, 8, 8])
    received = MeasureSettings.from_dict({"runtime": "null", "input_shape": [1, 3, 8, 8]})  # what the agent builds
    for name, value in MEASUREMENT_DEFAULTS.items():
        assert getattr(cfg, name) == value, name
        assert RUN_DEFAULTS[name] == value, name
        if name in DEFAULTS:
            assert getattr(core, name) == value and getattr(received, name) == value, name
    assert RUN_DEFAULTS["energy_window_s"] == cfg.energy_window_s == 10.0  # README: "(10 by default)"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`--energy-window` seconds (10 by default)" in readme
    assert "**`--max-iters`** (200,000 by default)" in readme


@pytest.mark.parametrize("text,expected", [("1,8,32", [1, 8, 32]), ("4", [4])])
def test_batch_lists(text, expected):
    assert parse_int_list(text) == expected


@pytest.mark.parametrize("text", ["1,,8", "-1", "0", "a", "1,", " "])
def test_bad_batch_lists(text):
    with pytest.raises(ValueError):
        parse_int_list(text)


def test_percentages():
    assert parse_percent("1%") == pytest.approx(0.01) and parse_percent("0.02") == 0.02 and parse_percent(None) is None
    for bad in ("abc", "nan", "inf%"):
        with pytest.raises(ValueError):
            parse_percent(bad)


def test_aliases_become_canonical_names_and_hash_alike():
    a, b = RunConfig(model="m", backend="ov"), RunConfig(model="m", backend="openvino")
    assert a.backend == "openvino" and a.config_hash() == b.config_hash()


@pytest.mark.parametrize("text,seconds", [("10m", 600.0), ("60s", 60.0), ("1.5h", 5400.0), ("250ms", 0.25), ("3", 3.0)])
def test_durations_take_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "m", "-3s", "0", "nan", "inf"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_sweep_file_may_give_durations_with_units_and_the_sustained_window(tmp_path):
    from effbench.harness.sweep import load_sweep

    f = tmp_path / "s.yaml"
    f.write_text("models: [m]\nbackends: [null]\nscenarios: [latency, sustained]\nduration_s: 2m\nwindow_s: 20s\n")
    cells = load_sweep(f)
    assert [c.scenario for c in cells] == ["latency", "sustained"] and all(c.duration_s == 120.0 for c in cells)
    assert cells[1].window_s == 20.0 and cells[0].window_s is None  # the latency cell has no windows
    assert (
        RunConfig(model="m", backend="null").config_hash()
        == RunConfig(model="m", backend="null", cooldown_s=5).config_hash()
    )


def test_the_default_timeout_grows_to_cover_a_sustained_run_and_the_thermal_gate():
    assert RunConfig(model="m", backend="null").timeout_s == RUN_DEFAULTS["timeout_s"]
    long = RunConfig(model="m", backend="null", scenario="sustained", duration_s=600, max_start_temp=45)
    assert long.timeout_s == RUN_DEFAULTS["timeout_s"] + 600 + RUN_DEFAULTS["cooldown_timeout_s"]
    with pytest.raises(ValueError, match="shorter than the cell's sustained run"):
        RunConfig(model="m", backend="null", cooldown_s=120, timeout_s=60)
