"""Resolution as a sweep axis: `--input-size 160,224,288` and a sweep's `resolutions:` make one cell
per size, the export cache is keyed by it, and a size a model cannot take is refused up front."""

from __future__ import annotations

import pytest
import torch

from effbench.harness.sweep import load_sweep
from effbench.reports.data import to_rows
from effbench.reports.views.resolution import resolution_section
from tests.conftest import FAST, one_line, read_records

NULL = ["--model", "efficientvit_m0", "--backend", "null"]


def test_a_sweep_makes_one_cell_per_resolution(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("models: [efficientvit_m0, resnet50]\nbackends: [null]\nresolutions: [160, 224, 288]\n")
    cells = load_sweep(f)
    assert sorted((c.model, c.input_size) for c in cells) == sorted(
        (m, s) for m in ("efficientvit_m0", "resnet50") for s in (160, 224, 288)
    )
    assert len({c.config_hash() for c in cells}) == 6
    f.write_text("models: [efficientvit_m0]\nbackends: [null]\nresolutions: [160]\ninput_size: 224\n")
    with pytest.raises(Exception, match="either 'resolutions' or 'input_size'"):
        load_sweep(f)


@pytest.mark.slow
def test_input_size_list_runs_one_cell_per_size_each_exported_once(cli, tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--input-size", "24,40", *FAST]
    r = cli(*args, "--in-process", "--no-store", "-o", out)
    assert r.returncode == 0, r.output
    recs = read_records(out)
    assert [x["config"]["input_size"] for x in recs] == [24, 40] and all(x["status"] == "ok" for x in recs)
    assert recs[0]["macs"] < recs[1]["macs"]  # two graphs, not one artifact reused
    r = cli(*args, "--in-process", "--no-store", "-o", out)
    assert r.returncode == 0 and all(x["artifact_cached"] for x in read_records(out))


def test_a_resolution_a_model_cannot_take_is_one_line(cli):
    one_line(
        cli("run", "--model", "efficientformer_l1", "--backend", "null", "--input-size", "160", "--no-store"),
        2,
        "efficientformer_l1 takes only 224x224 inputs",
        "--input-size 160",
    )


def test_an_onnx_file_with_a_fixed_size_names_it(cli, tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), input_names=["x"], dynamo=False)
    one_line(
        cli("run", "--model", path, "--backend", "ort", "--input-size", "32", "--no-store"),
        2,
        "fixes its input at 16x16",
        "dynamic height and width",
    )


@pytest.mark.parametrize("size,needle", [("160,160", "listed twice"), ("0", "below"), ("1,a", "not a size")])
def test_bad_input_size_lists(cli, size, needle):
    one_line(cli("run", *NULL, "--input-size", size, "--no-store"), 2, "--input-size", needle)


def _rec(size: int, median: float, model: str = "efficientvit_m0") -> dict:
    return {
        "id": f"{model}{size}".ljust(32, "0"),
        "model": model,
        "backend": "ort",
        "device": "cpu",
        "scenario": "latency",
        "batch_size": 1,
        "precision": "fp32",
        "status": "ok",
        "latency_ms": {"median": median, "ci95": [median * 0.98, median * 1.02], "p99": median * 1.2},
        "created_at": f"2026-12-07T10:00:{size % 60:02d}+00:00",
        "config": {"input_size": size},
    }


def test_the_resolution_view_draws_one_line_per_model():
    recs = [_rec(160, 1.0), _rec(224, 2.0), _rec(288, 3.5), _rec(224, 5.0, "resnet50")]
    s = resolution_section(to_rows(recs))
    fig = s.figures[0].to_json()
    assert len(fig["data"]) == 1  # resnet50 has one size only
    assert fig["data"][0]["x"] == [160, 224, 288] and fig["data"][0]["y"] == [1.0, 2.0, 3.5]
    assert "x3.50" in s.body
    assert "No model measured" in resolution_section(to_rows(recs[3:])).body
