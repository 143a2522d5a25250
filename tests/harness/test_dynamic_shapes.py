"""`--dynamic`: one ONNX graph with dynamic batch/height/width measured at each listed shape
against the static artifacts, on ONNX Runtime; refused up front where it cannot run."""

from __future__ import annotations

import onnx
import pytest

from effbench.reports.data import to_rows
from effbench.reports.views.resolution import resolution_section
from tests.conftest import FAST, one_line, read_records


@pytest.mark.slow
def test_dynamic_shapes_are_measured_against_the_static_cells(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli(
        "run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--input-size", "24,40", "--dynamic",
        *FAST, "--in-process", "--no-store", "-o", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    assert "dynamic b1@24: steady" in r.stdout and "dynamic b1@40: steady" in r.stdout
    recs = read_records(out)
    for rec in recs:
        d = rec["extra"]["dynamic"]
        size = rec["config"]["input_size"]
        assert d["shape"] == [1, 3, size, size] and d["static_median_ms"] == rec["latency_ms"]["median"]
        assert d["penalty"] == pytest.approx(d["steady_median_ms"] / d["static_median_ms"])
        assert d["first_after_switch_ms"] > 0 and d["iterations"] >= 10 and "traced at 1x3x24x24" in d["artifact"]
    dims = onnx.load(recs[0]["extra"]["dynamic"]["artifact_path"]).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]  # one graph, free dimensions
    assert "Dynamic shapes" in resolution_section(to_rows(recs)).body


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--model", "efficientvit_m0", "--backend", "null"], ["--dynamic needs", "backend null cannot"]),
        (["--model", "efficientvit_m0", "--backend", "openvino"], ["--dynamic needs", "backend openvino cannot"]),
    ],
)
def test_dynamic_is_refused_where_the_backend_cannot(cli, args, needles):
    one_line(cli("run", *args, "--dynamic", "--no-store"), 2, *needles)


def test_dynamic_is_refused_for_an_onnx_file(cli, tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), path)
    one_line(cli("run", "--model", path, "--backend", "ort", "--dynamic", "--no-store"), 2, "an ONNX file brings")
