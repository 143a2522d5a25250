"""effbench.analysis.graph: counting rules on hand-built graphs, and totals on real timm exports."""

import json
import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from effbench.analysis.graph import aggregate, analyze
from effbench.errors import UsageError

FLOAT = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, initializers=None):
    """A float model from nodes, {input: shape}, output names and {initializer: array or None}."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(name, FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, FLOAT, None) for name in outputs],
        [numpy_helper.from_array(v, name) for name, v in (initializers or {}).items() if v is not None],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def weights(*shape):
    return np.ones(shape, dtype=np.float32)


def single_node(op_type, inputs, initializers=None, **attrs):
    names = [*inputs, *(initializers or {})]
    node = helper.make_node(op_type, names, ["y"], name="n", **attrs)
    return analyze(make_model([node], inputs, ["y"], initializers)).node("n")


# ------------------------------------------------------------------ MAC-counting ops


def test_depthwise_conv():
    stats = single_node("Conv", {"x": [1, 8, 16, 16]}, {"w": weights(8, 1, 3, 3)}, group=8, pads=[1, 1, 1, 1])
    assert stats.macs == 8 * 16 * 16 * 9
    assert stats.other_flops == 0
    assert stats.flops == 2 * 8 * 16 * 16 * 9
    assert stats.params == 8 * 9


@pytest.mark.parametrize("precision, elem", [("fp32", 4), ("fp16", 2), ("int8", 1)])
def test_grouped_conv_with_bias_counts_bytes_and_params(precision, elem):
    # 8 -> 16 channels in 4 groups, 3x3 stride 2 without padding: 10x10 -> 4x4.
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", group=4, strides=[2, 2])],
        {"x": [2, 8, 10, 10]},
        ["y"],
        {"w": weights(16, 2, 3, 3), "b": weights(16)},
    )
    stats = analyze(model, precision=precision).node("conv")
    out = 2 * 16 * 4 * 4
    assert stats.macs == out * 2 * 3 * 3
    assert stats.other_flops == out  # the bias add
    assert stats.params == 16 * 2 * 9 + 16
    assert stats.param_bytes == stats.params * elem
    assert stats.bytes_read == (2 * 8 * 10 * 10 + stats.params) * elem
    assert stats.bytes_written == out * elem
    assert stats.intensity == pytest.approx(stats.flops / (stats.bytes_read + stats.bytes_written))


@pytest.mark.parametrize(
    "a, b, macs",
    [
        ([2, 4, 8, 16], [2, 4, 16, 8], 2 * 4 * 8 * 8 * 16),
        ([3, 1, 5, 6], [4, 6, 7], 3 * 4 * 5 * 7 * 6),  # broadcast batch dims
        ([6], [2, 6, 7], 2 * 7 * 6),  # 1-D A: a row vector, dropped from the result
        ([2, 5, 6], [6], 2 * 5 * 6),  # 1-D B: a column vector
    ],
)
def test_matmul(a, b, macs):
    stats = single_node("MatMul", {"a": a, "b": b})
    assert (stats.macs, stats.other_flops, stats.params) == (macs, 0, 0)


def test_einsum_counts_like_the_equivalent_matmul():
    stats = single_node("Einsum", {"a": [2, 4, 8, 16], "b": [2, 4, 16, 8]}, equation="...ij,...jk->...ik")
    assert stats.macs == 2 * 4 * 8 * 8 * 16


@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_with_bias_and_transposed_weight(trans_a):
    a_shape = [32, 4] if trans_a else [4, 32]
    model = make_model(
        [helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=trans_a, transB=1)],  # unnamed
        {"a": a_shape},
        ["y"],
        {"w": weights(10, 32), "c": weights(10)},
    )
    stats = analyze(model).node("Gemm_0")
    assert stats.macs == 4 * 10 * 32
    assert stats.other_flops == 4 * 10
    assert stats.flops == 2 * 4 * 10 * 32 + 4 * 10
    assert stats.params == 10 * 32 + 10


# ------------------------------------------------------------------ other ops


@pytest.mark.parametrize(
    "op_type, inputs, initializers, attrs, other_flops",
    [
        ("Add", {"a": [2, 3, 4], "b": [4]}, None, {}, 24),
        ("HardSwish", {"x": [1, 8]}, None, {}, 4 * 8),
        ("Softmax", {"x": [2, 10]}, None, {}, 5 * 20),
        ("MaxPool", {"x": [1, 4, 9, 9]}, None, {"kernel_shape": [3, 3], "strides": [2, 2]}, 4 * 4 * 4 * 9),
        ("GlobalAveragePool", {"x": [1, 4, 9, 9]}, None, {}, 4 * 9 * 9),
        ("BatchNormalization", {"x": [1, 4, 3, 3]}, {k: weights(4) for k in "sbmv"}, {}, 2 * 36),
        (
            "Resize",
            {"x": [1, 2, 4, 4]},
            {"": None, "scales": np.array([1, 1, 2, 2], np.float32)},
            {"mode": "linear"},
            4 * 2 * 8 * 8,
        ),
        ("Reshape", {"x": [2, 3, 4]}, {"shape": np.array([6, 4])}, {}, 0),
    ],
)
def test_other_flops(op_type, inputs, initializers, attrs, other_flops):
    initializers = initializers or {}
    names = [*inputs, *initializers]
    node = helper.make_node(op_type, names, ["y"], name="n", **attrs)
    stats = analyze(make_model([node], inputs, ["y"], initializers)).node("n")
    assert (stats.macs, stats.other_flops) == (0, other_flops)


def test_configuration_constants_are_not_params_and_views_move_no_bytes():
    scales = np.array([1, 1, 2, 2], np.float32)
    resize = single_node("Resize", {"x": [1, 2, 4, 4]}, {"": None, "scales": scales})
    assert resize.params == 0
    reshape = single_node("Reshape", {"x": [2, 3, 4]}, {"shape": np.array([6, 4])})
    assert (reshape.params, reshape.bytes_read, reshape.bytes_written) == (0, 0, 0)


def test_constant_nodes_and_static_shape_arithmetic_are_folded():
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weights(16, 4, 1, 1))),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
        helper.make_node("Shape", ["y"], ["s"], start=0, end=1),
        helper.make_node("Constant", [], ["minus_one"], value_ints=[-1]),
        helper.make_node("Concat", ["s", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["y", "target"], ["z"], name="reshape"),
    ]
    analysis = analyze(make_model(nodes, {"x": [1, 4, 8, 8]}, ["z"]))
    assert [s.name for s in analysis.nodes] == ["conv", "reshape"]
    assert len(analysis.folded_nodes) == 4
    assert analysis.node("conv").params == analysis.params == 16 * 4
    assert analysis.tensor_bytes["z"] == 1 * 16 * 8 * 8 * 4


# ------------------------------------------------------------------ memory and fusion


def chain_model():
    """x[1,4,8,8] -conv 1x1-> y[1,16,8,8] -relu-> z -maxpool 2x2-> out[1,16,4,4]."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv"),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
        helper.make_node("MaxPool", ["z"], ["out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return make_model(nodes, {"x": [1, 4, 8, 8]}, ["out"], {"w": weights(16, 4, 1, 1), "b": weights(16)})


@pytest.mark.parametrize("precision, elem", [("fp32", 4), ("bf16", 2)])
def test_peak_activation_memory_of_a_chain(precision, elem):
    # Peak is while relu runs: y (its input) and z (its output), 1024 elements each; x is freed.
    assert analyze(chain_model(), precision=precision).peak_activation_bytes == (1024 + 1024) * elem


def test_peak_activation_memory_counts_a_view_once():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Identity", ["a"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["c"]),
    ]
    # a and b share one buffer: peak is x + a, then a + c; 3 x 256 if b were a copy.
    assert analyze(make_model(nodes, {"x": [1, 4, 8, 8]}, ["c"])).peak_activation_bytes == 2 * 256 * 4


def test_aggregate_excludes_the_internal_tensor():
    analysis = analyze(chain_model())
    group = aggregate(analysis, ["conv", "relu"])
    assert group.bytes_read == (256 + 16 * 4 + 16) * 4  # x, weight, bias; not y
    assert group.bytes_written == 1024 * 4  # z only
    assert group.params == 16 * 4 + 16
    assert group.macs == 1024 * 4
    assert group.flops == 2 * 1024 * 4 + 1024 + 1024
    assert group.intensity == pytest.approx(group.flops / (group.bytes_read + group.bytes_written))
    conv, relu = analysis.node("conv"), analysis.node("relu")
    unfused = conv.bytes_read + conv.bytes_written + relu.bytes_read + relu.bytes_written
    assert unfused - (group.bytes_read + group.bytes_written) == 2 * 1024 * 4  # y written and read back


def test_aggregate_of_one_node_matches_the_node():
    analysis = analyze(chain_model())
    conv, group = analysis.node("conv"), aggregate(analysis, ["conv"])
    assert (group.flops, group.params, group.bytes_read, group.bytes_written) == (
        conv.flops,
        conv.params,
        conv.bytes_read,
        conv.bytes_written,
    )


def test_totals_and_reports_are_consistent():
    analysis = analyze(chain_model())
    assert analysis.flops == sum(s.flops for s in analysis.nodes) == 2 * analysis.macs + analysis.other_flops
    assert analysis.input_shapes == {"x": [1, 4, 8, 8]}
    table = analysis.by_op_type()
    assert {op: row["count"] for op, row in table.items()} == {"Conv": 1, "Relu": 1, "MaxPool": 1}
    assert table["Conv"]["macs"] == analysis.macs
    as_dict = json.loads(json.dumps(analysis.to_dict()))
    assert as_dict["flops"] == analysis.flops
    assert [n["name"] for n in as_dict["nodes"]] == ["conv", "relu", "pool"]
    with pytest.raises(KeyError, match="nope"):
        analysis.node("nope")


# ------------------------------------------------------------------ errors


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="not found.*missing.onnx"):
        analyze(tmp_path / "missing.onnx")


@pytest.mark.parametrize("content", [b"\x00\xffthis is not an onnx model\x12\x34", b""])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="re-export"):
        analyze(path)


def test_dynamic_input_needs_fixed_shapes():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ["batch", 3]}, ["y"])
    with pytest.raises(UsageError, match="'x'.*fixed input shapes"):
        analyze(model)
    assert analyze(model, input_shapes={"x": [2, 3]}).other_flops == 6


def test_unknown_precision():
    with pytest.raises(UsageError, match="fp16"):
        analyze(chain_model(), precision="fp8")


# ------------------------------------------------------------------ real exports

PUBLISHED_MMACS = {
    "efficientvit_m0": 79,
    "efficientvit_m1": 167,
    "efficientvit_m2": 201,
    "efficientvit_m3": 263,
    "efficientvit_m4": 299,
    "efficientvit_m5": 522,
    "resnet50": 4100,
    "mobilenetv3_large_100": 220,
}


@pytest.fixture(scope="session")
def export(tmp_path_factory):
    """name -> (path of the ONNX export, timm model); each model exported once per session."""
    timm = pytest.importorskip("timm")
    torch = pytest.importorskip("torch")
    folder, cache = tmp_path_factory.mktemp("exports"), {}

    def _export(name):
        if name not in cache:
            model = timm.create_model(name, pretrained=False).eval()
            path = folder / f"{name}.onnx"
            with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer warnings
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    torch.randn(1, 3, 224, 224),
                    str(path),
                    dynamo=False,
                    opset_version=17,
                    input_names=["input"],
                    output_names=["output"],
                )
            cache[name] = path, model
        return cache[name]

    return _export


def torch_macs(model):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    return counter.get_total_flops() / 2


def slow_unless_small(name):
    return name if name == "efficientvit_m0" else pytest.param(name, marks=pytest.mark.slow)


@pytest.mark.parametrize("name", [slow_unless_small(name) for name in PUBLISHED_MMACS])
def test_macs_match_published_figures(export, name):
    path, _ = export(name)
    analysis = analyze(path)
    assert analysis.macs / 1e6 == pytest.approx(PUBLISHED_MMACS[name], rel=0.03)
    assert analysis.uncounted == {}


@pytest.mark.parametrize("name", [slow_unless_small(n) for n in ("efficientvit_m0", "efficientvit_m5", "resnet50")])
def test_macs_match_torch_flop_counter(export, name):
    path, model = export(name)
    assert analyze(path).macs == pytest.approx(torch_macs(model), rel=1e-3)
