"""scripts/gpu_check.py's own step machinery, end to end on the CPU (null backend, torch on CPU):
the plumbing a GPU machine runs (config per step, skip reasons, the harness, JSON records, the
summary) is exercised in every CI run, not first on the GPU machine."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest

from effbench.backends.tensorrt_backend import TensorRTBackend
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
assert _spec is not None and _spec.loader is not None
gpu_check: Any = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # dataclasses look their module up there
_spec.loader.exec_module(gpu_check)  # at collection: a name the script imports that disappears fails here

QUICK = dict(duration_s=0.3, warmup_s=0.05, warmup_iters=3, min_iters=5, input_size=32)
TINY = "tiny_models:tiny_cnn"


def test_every_gpu_step_is_a_valid_cell_configuration():
    names = [s.name for s in gpu_check.STEPS]
    assert {"trt_fp32_b1", "trt_fp16_b1", "trt_int8_b1"} <= set(names) and len(set(names)) == len(names)
    for step in gpu_check.STEPS:
        cfg = gpu_check.step_config(step, gpu_check.MODEL, "cuda:0")
        assert cfg.device == "cuda:0" and cfg.backend == step.fields["backend"]
    trt32 = next(s for s in gpu_check.STEPS if s.name == "trt_fp32_b1")
    assert gpu_check.step_config(trt32, TINY, "cuda:0").precision == "fp32"  # the step that needs no ModelOpt


def test_the_steps_run_through_the_harness_and_the_summary_reads_them(tmp_path, capsys):
    steps = [
        gpu_check.Step("null_b1", "null backend", dict(backend="null", **QUICK)),
        gpu_check.Step("torch_cpu_b1", "torch on the CPU", dict(backend="torch", threads=1, **QUICK)),
        gpu_check.Step("trt_on_cpu", "tensorrt on the CPU", dict(backend="tensorrt", **QUICK)),
        gpu_check.Step("bad_option", "a misspelt option", dict(backend="null", options={"busy_usec": "1"}, **QUICK)),
    ]
    recs = {s.name: gpu_check.run_step(s, tmp_path / f"{s.name}.json", TINY, device="cpu") for s in steps}
    assert recs["null_b1"]["status"] == "ok", recs["null_b1"]
    torch_rec = recs["torch_cpu_b1"]
    assert torch_rec["status"] == "ok", torch_rec
    record = torch_rec["record"]
    assert record["parity"]["ok"] and record["latency_ms"]["median"] > 0 and "samples_ms" not in record
    assert recs["trt_on_cpu"]["status"] == "unusable" and recs["trt_on_cpu"]["error"]  # tensorrt's own reason
    assert recs["bad_option"]["status"] == "skipped" and "busy_us" in recs["bad_option"]["error"]  # harness: bad input
    assert json.loads((tmp_path / "torch_cpu_b1.json").read_text())["step"] == "torch_cpu_b1"

    capsys.readouterr()
    assert gpu_check.summary(tmp_path, steps, energy_step="torch_cpu_b1") == 1  # the cell the harness refused counts
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.split() and ln.split()[0] in recs}
    assert rows["torch_cpu_b1"].split()[1] == "ok" and "fp32" in rows["torch_cpu_b1"]
    assert f"{record['latency_ms']['median']:.4f}" in rows["torch_cpu_b1"]
    assert rows["trt_on_cpu"].split()[1] == "unusable"
    assert "energy (torch_cpu_b1)" in out and "unavailable" in out
    assert gpu_check.summary(tmp_path, steps[:3], energy_step=None) == 0


def test_a_missing_record_is_reported_not_skipped(tmp_path, capsys):
    assert gpu_check.summary(tmp_path, gpu_check.STEPS[:1]) == 1
    assert "no output" in capsys.readouterr().out


def test_fp16_and_int8_on_tensorrt_11_skip_naming_modelopt(monkeypatch):
    # No TensorRT wheel can run here (no GPU): only its version is faked, to reach the TensorRT 11 rule.
    monkeypatch.setattr(TensorRTBackend, "version", lambda self: "11.1.0")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "modelopt" else object())
    trt = TensorRTBackend()
    assert trt.check_precision("fp32", "cuda:0") is None
    for precision in ("fp16", "int8"):
        reason = trt.check_precision(precision, "cuda:0")
        assert reason is not None and "nvidia-modelopt" in reason and "TensorRT 11.1.0" in reason


def test_the_script_entry_points():
    steps = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "steps"], capture_output=True, text=True, timeout=120
    )
    assert steps.returncode == 0, steps.stderr
    assert steps.stdout.split() == [s.name for s in gpu_check.STEPS]
    usage = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "cell", "nope", "x.json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert usage.returncode == 2 and "python scripts/gpu_check.py cell NAME OUT.json" in usage.stderr


@pytest.mark.parametrize("script", ["gpu-check.sh"])
def test_the_shell_entry_point_lists_the_same_steps(script):
    text = (ROOT / "scripts" / script).read_text()
    assert "scripts/gpu_check.py steps" in text
    for step in gpu_check.STEPS:
        assert step.name in text  # the fallback list when the step list cannot be read
