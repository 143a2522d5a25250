"""ONNX Runtime placement on real sessions of the tiny CNN: the execution provider per node (ORT's
recorded graph assignment), int8 per node (what ORT fused into int8 kernels), MACs from the graph
analysis, and --max-fallback on ORT runs that pass and fail."""

from __future__ import annotations

import pytest

from effbench.backends.registry import get_backend
from effbench.harness.config import RunConfig
from effbench.harness.prepare import check_cell, prepare
from tests.conftest import FAST, TINY_CNN, bench, read_records

CPU = "CPUExecutionProvider"


def _runtime(**cfg):
    cell = prepare(
        check_cell(RunConfig(model="tiny_models:tiny_cnn", backend="onnxruntime", input_size=32, threads=1, **cfg))
    )
    session = get_backend("onnxruntime").open(cell.artifact, cell.settings)
    session.late_info()  # the measuring process calls it after the timed runs
    runtime = dict(session.runtime_info)
    session.close()
    return runtime


def test_fp32_every_node_on_the_cpu_provider():
    runtime = _runtime()
    placement, rows = runtime["placement"], runtime["placement_nodes"]
    assert placement["requested"] == CPU and placement["fallback"] == []
    assert placement["units"][CPU]["precisions"] == {"fp32": placement["nodes"]}
    assert [r[1] for r in rows if r[1] in ("Conv", "Gemm")] == ["Conv", "Conv", "Gemm"]


def test_int8_says_which_node_stayed_fp32():
    # the first conv left unquantised: its fp32 input keeps it fp32. (An unquantised conv between Q/DQ
    # pairs would not do: ORT quantises its weights itself and fuses it into QLinearConv.)
    runtime = _runtime(precision="int8", options={"keep_fp32": "/0/Conv"})
    precision = {name: prec for name, _op, _ep, prec, _ in runtime["placement_nodes"]}
    assert precision["/0/Conv"] == "fp32"
    assert precision["/2/Conv"] == precision["/6/Gemm"] == "int8"  # fused into QLinearConv, QGemm


@pytest.mark.parametrize("keep,limit,code", [("", "0%", 0), ("/0/Conv", "50%", 1)])
def test_max_fallback_on_onnxruntime(tmp_path, db, keep, limit, code):
    out = tmp_path / "r.json"
    r = bench(
        "run", *TINY_CNN, "--backend", "ort", "--precision", "int8", "--opt", f"keep_fp32={keep}",
        "--threads", "1", "--max-fallback", limit, *FAST, "--db", db, "--out", out,
    )  # fmt: skip
    assert r.returncode == code, r.output
    (rec,) = read_records(out)
    placement = rec["runtime"]["placement"]
    assert placement["fallback_basis"] == "macs" and placement["macs"] == rec["macs"]
    assert "placement_nodes" not in rec["runtime"]
    int8 = placement["units"][CPU]["precision_macs"]["int8"]
    if code:
        first = 16 * 16 * 8 * 27  # the first conv (3x3, 3 -> 8 channels, 16x16 out): three quarters of the MACs
        assert rec["status"] == "failed" and "ran outside CPUExecutionProvider int8" in rec["error"]
        assert "Conv (CPUExecutionProvider, fp32)" in rec["error"] and int8 == rec["macs"] - first
    else:
        assert rec["status"] == "ok" and int8 == rec["macs"]
