"""Small ONNX graphs, made by hand, for the predictor's tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _w(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed + len(name))
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)


def tiny_cnn(path, extra_op: str | None = None, channels: int = 16) -> str:
    """conv3x3+BN+ReLU -> depthwise 3x3 + SiLU (x*sigmoid x) -> pointwise + residual add -> GAP ->
    flatten -> linear+ReLU; with `extra_op`, one more operator (no kernel rule) before the pool."""
    c = channels
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c0", "g", "bt", "mu", "var"], ["bn0"], name="bn0"),
        helper.make_node("Relu", ["bn0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], name="dw1", group=c, pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="silu1"),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], name="pw2"),
        helper.make_node("Add", ["c2", "r0"], ["res"], name="res_add"),
    ]
    last = "res"
    if extra_op == "CumSum":
        nodes.append(helper.make_node("CumSum", [last, "axis"], ["odd"], name="odd_op"))
        last = "odd"
    elif extra_op:
        nodes.append(helper.make_node(extra_op, [last], ["odd"], name="odd_op"))
        last = "odd"
    nodes += [
        helper.make_node("GlobalAveragePool", [last], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["fc"], name="fc", transB=1),
        helper.make_node("Relu", ["fc"], ["output"], name="relu_fc"),
    ]
    inits = [
        _w("w0", c, 3, 3, 3),
        _w("b0", c),
        numpy_helper.from_array(np.ones(c, np.float32), "g"),
        numpy_helper.from_array(np.zeros(c, np.float32), "bt"),
        numpy_helper.from_array(np.zeros(c, np.float32), "mu"),
        numpy_helper.from_array(np.ones(c, np.float32), "var"),
        _w("w1", c, 1, 3, 3),
        _w("w2", c, c, 1, 1),
        _w("wf", 10, c),
        _w("bf", 10),
    ]
    if extra_op == "CumSum":
        inits.append(numpy_helper.from_array(np.array(1, np.int64), "axis"))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def attention(path) -> str:
    """A single attention block on tokens: q, k, v linears -> q @ k^T * scale -> softmax -> @ v -> reshape
    -> transpose."""
    d, t = 32, 49
    nodes = [
        helper.make_node("MatMul", ["input", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["input", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["input", "wv"], ["v"], name="v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["qk"], name="qk"),
        helper.make_node("Mul", ["qk", "scale"], ["qks"], name="scale_mul"),
        helper.make_node("Softmax", ["qks"], ["attn"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["av"], name="av"),
        helper.make_node("Reshape", ["av", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["output"], name="out_t", perm=[0, 2, 1]),
    ]
    inits = [
        _w("wq", d, d),
        _w("wk", d, d),
        _w("wv", d, d),
        numpy_helper.from_array(np.array(d**-0.5, np.float32), "scale"),
        numpy_helper.from_array(np.array([1, t, d], np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "attn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, t, d])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, d, t])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return str(path)


def only_cumsum(path) -> str:
    """One CumSum over the input: an operator no kernel rule covers, so no predictor measures it."""
    axis = numpy_helper.from_array(np.array(1, dtype=np.int64), "axis")
    graph = helper.make_graph(
        [helper.make_node("CumSum", ["input", "axis"], ["output"], name="cumsum")],
        "only_cumsum",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 32, 32])],
        [axis],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return str(path)
