"""FOR THE LEAD: the end-to-end test of issue 14 through the real `bench run` command.

It skips itself ("needs the runner integration") until `bench run --help` offers --calib; once the
runner wires the accuracy flags (see docs/accuracy.md, "Integration"), it runs as is:

    bench run --model digits_models:digits_cnn --weights W --input-size 16 --backend openvino
              --precision int8 --calib DIGITS/train --calib-size 128 --eval DIGITS/val ...
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST, bench, read_records

from .test_engines import torch_own_evaluation

MODEL = ["--model", "digits_models:digits_cnn", "--input-size", "16", "--threads", "1"]


@pytest.fixture(scope="module")
def wired():
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "bench"), "run", "--help"], capture_output=True, text=True
    ).stdout
    if "--calib" not in help_text or "--eval" not in help_text:
        pytest.skip("needs the runner integration (bench run --calib/--eval/--weights)")


def _run(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    r = bench("run", *MODEL, *args, *FAST, "--no-store", "--out", out)
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    return rec


def test_fp32_top1_on_the_timed_engine_matches_pytorch(wired, digits, trained, tmp_path):
    rec = _run(
        tmp_path,
        "fp32",
        "--weights",
        trained.weights,
        "--backend",
        "openvino",
        "--eval",
        digits.val,
        "--crop-pct",
        "1.0",
    )
    acc = rec["accuracy"]
    own = torch_own_evaluation(trained.module, digits.val)
    assert acc["images"] == own.size and abs(acc["top1"] * own.size / 100 - own.sum()) <= 1
    assert acc["reference"]["runtime"] == "torch" and abs(acc["drop"]) <= 0.2
    assert acc["top1_ci"][0] < acc["top1"] < acc["top1_ci"][1] and len(acc["dataset_hash"]) == 64
    assert rec["precision_ran"] == "fp32"


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_int8_with_calibration_and_eval(wired, digits, trained, tmp_path, backend):
    args = [
        "--weights",
        trained.weights,
        "--backend",
        backend,
        "--precision",
        "int8",
        "--calib",
        digits.train,
        "--calib-size",
        "128",
        "--eval",
        digits.val,
        "--crop-pct",
        "1.0",
    ]
    first = _run(tmp_path, "first", *args)
    again = _run(tmp_path, "again", *args)
    assert first["precision_ran"] == "int8" and first["artifact_cached"] is False and again["artifact_cached"] is True
    quant = first["quantization"]
    assert quant["calibration"]["source"] == "dir" and quant["calibration"]["images"] == 128
    assert quant["calibration"]["hash"] == again["quantization"]["calibration"]["hash"]
    assert quant["int8_macs_share"] > 0.9
    acc = first["accuracy"]
    assert acc["drop_ci"][0] <= acc["drop"] <= acc["drop_ci"][1] and 0 <= acc["mcnemar_p"] <= 1
    assert acc["top1"] > 80


def test_generated_calibration_carries_its_warning(wired, trained, tmp_path):
    rec = _run(
        tmp_path,
        "gen",
        "--weights",
        trained.weights,
        "--backend",
        "onnxruntime",
        "--precision",
        "int8",
        "--calib-size",
        "16",
    )
    warning = rec["quantization"]["calibration"]["warning"]
    assert "accuracy is not" in warning and any("accuracy is not" in w for w in rec["warnings"])


def test_accuracy_aware_int8_records_kept_layers(wired, digits, trained, tmp_path):
    rec = _run(
        tmp_path,
        "ac",
        "--weights",
        trained.weights,
        "--backend",
        "openvino",
        "--precision",
        "int8",
        "--calib",
        digits.train,
        "--calib-size",
        "64",
        "--eval",
        digits.val,
        "--eval-limit",
        "200",
        "--max-drop",
        "1%",
        "--crop-pct",
        "1.0",
    )
    assert isinstance(rec["quantization"]["layers_kept_fp32"], list) and rec["accuracy"]["images"] == 200


def test_bad_input_is_one_line_before_measuring(wired, digits, trained, tmp_path):
    base = ["run", *MODEL, "--weights", trained.weights, "--backend", "onnxruntime", *FAST, "--no-store"]
    r = bench(*base, "--eval", tmp_path / "missing")
    assert r.returncode == 2 and "--eval" in r.stderr and "no such folder" in r.stderr
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{d} {d + 10}\n" for d in range(10)))
    r = bench(*base, "--eval", digits.val, "--eval-labels", labels)
    assert r.returncode == 2 and "10 outputs" in r.stderr
    broken = tmp_path / "val"
    subprocess.run(["cp", "-r", str(digits.val), str(broken)], check=True)
    (broken / "3" / "zz_broken.png").write_bytes(b"not a png")
    r = bench(*base, "--eval", broken)
    assert r.returncode == 2 and "zz_broken.png" in r.stderr and "--skip-bad-images" in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    out = tmp_path / "skip.json"
    r = bench(*base, "--eval", broken, "--skip-bad-images", "--out", out)
    assert r.returncode == 0 and read_records(out)[0]["accuracy"]["skipped_images"] == 1
