"""The predictor on LiteRT: its single-kernel ONNX graphs converted to .tflite (onnx2torch ->
litert-torch) and timed end to end less the empty-graph call, with a budget that cuts the build."""

from __future__ import annotations

import json

import pytest

from tests.conftest import one_line
from tests.predict.graphs import only_cumsum, tiny_cnn

pytest.importorskip("ai_edge_litert")
pytest.importorskip("litert_torch")
pytest.importorskip("onnx2torch")


@pytest.mark.slow
def test_a_budget_cut_litert_build_predicts_with_its_unknown_share(cli, tmp_path):
    env = {"EFFBENCH_STATE": str(tmp_path / "state"), "EFFBENCH_CACHE": str(tmp_path / "cache")}
    a, b = tiny_cnn(tmp_path / "a.onnx"), tiny_cnn(tmp_path / "b.onnx", channels=24)
    # 0.01 min: the first model's kernels (one batch) are measured whatever the budget, the rest is cut
    r = cli("predictor", "build", "--backend", "litert", "--budget", "0.01", "--zoo", f"{a},{b}", env=env)
    assert r.returncode == 1, r.output  # incomplete: says how to resume
    assert "6 kernels measured of 6" in r.stdout and "run the same command again to resume" in r.stdout
    data = json.loads((tmp_path / "state" / "predictors" / "litert-cpu.json").read_text())
    assert data["built"]["graphs"] == "onnx converted to tflite (onnx2torch -> litert-torch)"
    assert "less the measured empty-graph call" in data["built"]["kernel_time"]
    convs = [row for row in data["table"] if row["type"] in ("conv", "dwconv", "pwconv")]
    assert len(convs) == 3 and all(row["kernel_ns"] > 0 and row["overhead_ns"] > 0 for row in convs)
    assert data["identity"]["backend_version"] and not data["built"]["complete"]

    r = cli("predict", "--model", a, "--backend", "litert", "--json", env=env)
    assert r.returncode == 0, r.output
    out = json.loads(r.stdout)
    assert out["predicted_ms"] > 0 and not out["unknown"].get("ops")
    r = cli("predict", "--model", tiny_cnn(tmp_path / "odd.onnx", extra_op="CumSum"), "-b", "litert", "--json", env=env)
    out = json.loads(r.stdout)
    assert out["unknown"]["ops"] == ["CumSum"] and out["predicted_ms"] > 0
    nothing = only_cumsum(tmp_path / "c.onnx")
    one_line(cli("predict", "--model", nothing, "--backend", "litert", env=env), 2, "no measured kernel")
