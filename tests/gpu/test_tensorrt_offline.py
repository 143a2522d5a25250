"""The TensorRT pieces that need no GPU: engine cache keys, build options, calibration data, and
reading the engine inspector's JSON (recorded output of IEngineInspector.get_engine_information,
in the TensorRT 10 and TensorRT 11 spellings)."""

import json
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest

from effbench.backends.tensorrt_backend import layer_times, metadata_nodes, parse_engine_layers
from effbench.errors import UsageError
from effbench.export import tensorrt_export as te

GPU = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


def test_the_tensorrt_backend_names_its_exporter():
    from effbench.backends.registry import get_backend, load_ref
    from effbench.export.pipeline import tensorrt_artifact

    assert load_ref(get_backend("tensorrt").exporter_ref()) is tensorrt_artifact


def test_engine_key_parts_change_with_everything_that_changes_the_engine():
    opts = te.build_options({})
    base = te.engine_parts("onnxkey", "fp32", GPU, "10.13.0", opts, None)
    variants = [
        te.engine_parts("otherkey", "fp32", GPU, "10.13.0", opts, None),
        te.engine_parts("onnxkey", "fp16", GPU, "10.13.0", opts, None),
        te.engine_parts("onnxkey", "fp32", {**GPU, "compute_capability": "8.0"}, "10.13.0", opts, None),
        te.engine_parts("onnxkey", "fp32", {**GPU, "name": "NVIDIA A100"}, "10.13.0", opts, None),
        te.engine_parts("onnxkey", "fp32", GPU, "11.4.0", opts, None),
        te.engine_parts("onnxkey", "fp32", GPU, "10.13.0", te.build_options({"workspace_mb": "512"}), None),
        te.engine_parts("onnxkey", "fp32", GPU, "10.13.0", te.build_options({"tf32": "1"}), None),
    ]
    keys = {json.dumps(p, sort_keys=True) for p in [base, *variants]}
    assert len(keys) == len(variants) + 1
    a = te.engine_parts("k", "int8", GPU, "10.13.0", opts, "synthetic:a")
    b = te.engine_parts("k", "int8", GPU, "10.13.0", opts, "dir:b")
    assert a != b
    with pytest.raises(UsageError):
        te.engine_parts("k", "bf16", GPU, "10.13.0", opts, None)


@pytest.mark.parametrize(
    "opts", [{"workspace_mb": "-1"}, {"workspace_mb": "lots"}, {"opt_level": "9"}, {"calib_batches": "0"}]
)
def test_bad_build_options_are_usage_errors(opts):
    with pytest.raises(UsageError, match="invalid TensorRT option"):
        te.build_options(opts)


def test_versions():
    assert te.major("10.13.0.35") == 10 and te.major(None) == 0
    assert te.strongly_typed_only("11.4.0") and not te.strongly_typed_only("10.13.0")
    assert te.default_calib_batches(1) == 128 and te.default_calib_batches(256) == 1


def test_synthetic_calibration_batches_look_like_normalised_images():
    batches = te.calibration_batches((4, 3, 16, 16), None, 3, seed=1)
    assert len(batches) == 3 and all(b.shape == (4, 3, 16, 16) and b.dtype == np.float32 for b in batches)
    x = np.concatenate(batches)
    # uniform [0, 1) pixels through ImageNet normalisation: channel 0 spans about -2.1 .. 2.2
    assert -2.2 < x[:, 0].min() < -1.9 and 2.0 < x[:, 0].max() < 2.3
    again = te.calibration_batches((4, 3, 16, 16), None, 3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_calibration_batches_from_a_directory_of_npy_files(tmp_path):
    np.save(tmp_path / "a.npy", np.full((3, 8, 8), 1.0, np.float32))  # one image
    np.save(tmp_path / "b.npy", np.stack([np.full((3, 8, 8), v, np.float32) for v in (2.0, 3.0)]))  # a stack
    batches = te.calibration_batches((2, 3, 8, 8), str(tmp_path), 8)
    assert [b[:, 0, 0, 0].tolist() for b in batches] == [[1.0, 2.0], [3.0, 1.0]]  # last batch wraps around
    assert len(te.calibration_batches((2, 3, 8, 8), str(tmp_path), 1)) == 1
    ident = te.calibration_id(str(tmp_path), 2)
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 8, 8), np.float32))
    assert te.calibration_id(str(tmp_path), 2) != ident  # content, not names, keys the engine


def test_bad_calibration_directories_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not a directory"):
        te.calibration_batches((1, 3, 8, 8), str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="no .npy files"):
        te.calibration_batches((1, 3, 8, 8), str(tmp_path))
    np.save(tmp_path / "x.npy", np.zeros((3, 4, 4), np.float32))
    with pytest.raises(UsageError, match=r"expected \(3, 8, 8\)"):
        te.calibration_batches((1, 3, 8, 8), str(tmp_path))


def test_onnx_node_names_from_inspector_metadata():
    assert metadata_nodes("[ONNX Layer: /conv1/Conv]\x1f[ONNX Layer: /act/Relu]") == ["/conv1/Conv", "/act/Relu"]
    assert metadata_nodes("[ONNX Layer: a]\x1e[ONNX Layer: b]\x1f[ONNX Layer: a]") == ["a", "b"]
    assert metadata_nodes("") == [] and metadata_nodes(None) == []


TRT10_JSON = json.dumps(
    {
        "Layers": [
            {
                "Name": "/conv1/Conv + /act/Relu",
                "LayerType": "CaskConvolution",
                "Inputs": [{"Name": "input", "Format/Datatype": "Row major linear FP32"}],
                "Outputs": [{"Name": "/act/Relu_output_0", "Format/Datatype": "Row major linear FP32"}],
                "Metadata": "[ONNX Layer: /conv1/Conv]\x1f[ONNX Layer: /act/Relu]",
                "TacticName": "sm90_xmma_fprop_implicit_gemm_f32f32",
            },
            {
                "Name": "Reformatting CopyNode for Input Tensor 0 to /fc/Gemm",
                "LayerType": "Reformat",
                "Outputs": [{"Format/Datatype": "Half"}],
                "Metadata": "",
            },
        ],
        "Bindings": ["input", "output"],
    }
)

TRT11_JSON = json.dumps(
    {
        "Layers": [
            {
                "Name": "/fc/Gemm",
                "LayerType": "CaskGemm",
                "Outputs": [{"Format": "Row major linear", "Datatype": "Half"}],
                "Metadata": "[ONNX Layer: /fc/Gemm]",
            },
        ],
        "I/O Tensors": ["input", "output"],
    }
)


def test_inspector_json_in_both_spellings():
    layers = parse_engine_layers(TRT10_JSON)
    conv = layers["/conv1/Conv + /act/Relu"]
    assert conv["type"] == "CaskConvolution" and conv["nodes"] == ["/conv1/Conv", "/act/Relu"]
    assert conv["precision"] == "Row major linear FP32" and conv["tactic"].startswith("sm90")
    assert parse_engine_layers(TRT11_JSON)["/fc/Gemm"]["precision"] == "Half"
    names_only = parse_engine_layers(json.dumps({"Layers": ["a", "b"]}))
    assert names_only["a"] == {"type": "?", "nodes": [], "tactic": None, "precision": None}
    assert parse_engine_layers("not json") == {}


def test_profiled_times_map_to_fused_layers_and_their_onnx_nodes():
    layers = parse_engine_layers(TRT10_JSON)
    totals = {"/conv1/Conv + /act/Relu": [1.0, 10], "__myl_unknown_kernel": [0.5, 10]}
    out = layer_times(totals, 10, layers)
    assert out[0].name == "/conv1/Conv + /act/Relu" and out[0].op_type == "CaskConvolution"
    assert out[0].time_ms == pytest.approx(0.1) and out[0].nodes == ["/conv1/Conv", "/act/Relu"]
    assert out[0].extra["calls"] == 1 and out[0].extra["tactic"].startswith("sm90")
    assert out[1].nodes == [] and "not in the engine inspector" in out[1].extra["inspector"]


def test_engine_layers_become_a_placement_with_the_macs_of_their_onnx_nodes():
    # no GPU or TensorRT here: the inspector JSON is the one written above, in its documented shape
    from effbench.analysis.graph_stats import GraphAnalysis
    from effbench.backends.tensorrt_backend import engine_placement
    from effbench.harness.placement import add_macs, fallback_verdict

    layers = {**parse_engine_layers(TRT10_JSON), **parse_engine_layers(TRT11_JSON)}
    placement, rows = engine_placement(layers, "fp16")
    assert placement is not None and placement["requested"] == "GPU" and placement["nodes"] == 3
    assert placement["units"]["GPU"]["precisions"] == {"fp32": 1, "fp16": 2}
    assert rows[0][5] == ["/conv1/Conv", "/act/Relu"]
    runtime = {"placement": placement, "placement_nodes": rows}
    stats = [SimpleNamespace(name="/conv1/Conv", macs=300), SimpleNamespace(name="/fc/Gemm", macs=100)]
    add_macs(runtime, cast(GraphAnalysis, SimpleNamespace(nodes=stats)))
    placement = cast(dict, runtime["placement"])
    assert "placement_nodes" not in runtime and placement["fallback_basis"] == "macs"
    assert placement["units"]["GPU"]["precision_macs"] == {"fp32": 300, "fp16": 100}
    assert [f["node"] for f in placement["fallback"]] == ["/conv1/Conv + /act/Relu"]
    error, _ = fallback_verdict(runtime, "fp16", 50.0)
    assert error and error.startswith("75.0% of the MACs ran outside GPU fp16, more than --max-fallback 50%")
    assert fallback_verdict(runtime, "fp16", 80.0) == (None, None)
    # an engine built with names only says nothing of where its layers ran
    assert engine_placement(parse_engine_layers(json.dumps({"Layers": ["a", "b"]})), "fp16") == (None, [])
