"""Roofline arithmetic on hand-made graph stand-ins, and fused groups on a real ONNX graph."""

import json
from dataclasses import dataclass, field

import pytest

from effbench.analysis.roofline import model_roofline, to_dict, where_time_goes
from effbench.devices.catalog import Calibration, DeviceSpec, Peak
from effbench.errors import UsageError


@dataclass
class Node:
    name: str
    op_type: str
    flops: int
    bytes_read: int
    bytes_written: int = 0
    params: int = 0
    param_bytes: int = 0
    other_flops: int = 0

    @property
    def macs(self):
        return (self.flops - self.other_flops) // 2


@dataclass
class Analysis:
    nodes: list
    precision: str = "fp32"
    input_shapes: dict = field(default_factory=lambda: {"x": [1, 3, 8, 8]})
    peak_activation_bytes: int = 0

    @property
    def macs(self):
        return sum(n.macs for n in self.nodes)

    @property
    def flops(self):
        return sum(n.flops for n in self.nodes)


# 100 GFLOP/s and 10 GB/s: the ridge is at 10 FLOP/byte.
TOY = DeviceSpec(
    name="toy",
    kind="gpu",
    peak_flops={"fp32": Peak(value=100e9, source="test")},
    memory_bandwidth=Peak(value=10e9, source="test"),
)


def toy_analysis():
    return Analysis(
        [
            Node("conv", "Conv", flops=1_000_000_000, bytes_read=9_000_000, bytes_written=1_000_000),  # 100 FLOP/B
            Node("relu", "Relu", flops=1_000_000, bytes_read=40_000_000, bytes_written=40_000_000),  # memory
            Node("mm", "MatMul", flops=100_000_000, bytes_read=6_000_000, bytes_written=4_000_000),  # at the ridge
            Node("reshape", "Reshape", flops=0, bytes_read=0),
        ]
    )


def test_layer_bounds_and_labels():
    mr = model_roofline(toy_analysis(), TOY, "fp32")
    conv, relu, mm, reshape = mr.layers
    assert mr.ridge_intensity == 10
    assert (conv.bound, conv.bound_ms, conv.intensity) == ("compute", pytest.approx(10.0), 100)
    assert conv.attainable_flops_per_s == 100e9
    assert (relu.bound, relu.bound_ms) == ("memory", pytest.approx(8.0))
    assert relu.attainable_flops_per_s == pytest.approx(relu.intensity * 10e9)
    assert mm.intensity == pytest.approx(10) and mm.bound == "compute" and mm.bound_ms == pytest.approx(1.0)
    assert (reshape.bound, reshape.bound_ms) == ("none", 0)
    assert mr.roofline_ms == pytest.approx(19.0)
    assert mr.intensity == pytest.approx(mr.flops / 100_000_000)


def test_model_ideal_efficiency_and_gap():
    analysis = toy_analysis()
    mr = model_roofline(analysis, TOY, "fp32", measured_ms=38.0)
    assert mr.macs == analysis.macs == 550_500_000
    assert mr.ideal_ms == pytest.approx(2 * 550_500_000 / 100e9 * 1e3)  # 11.01 ms
    assert mr.efficiency == pytest.approx(mr.ideal_ms / 38.0)
    assert mr.gap == pytest.approx(2.0)
    assert mr.achieved_flops_per_s == pytest.approx(mr.flops / 0.038)
    unmeasured = model_roofline(analysis, TOY, "fp32")
    assert unmeasured.efficiency is unmeasured.gap is unmeasured.achieved_flops_per_s is None


def test_layer_times_and_where_time_goes():
    mr = model_roofline(
        toy_analysis(), TOY, "fp32", measured_ms=40.0, layer_times_ms={"conv": 12.0, "relu": 20.0, "ghost": 1.0}
    )
    conv = mr.layers[0]
    assert (conv.excess_ms, conv.efficiency) == (pytest.approx(2.0), pytest.approx(10 / 12))
    assert conv.achieved_flops_per_s == pytest.approx(1e9 / 0.012)
    assert any("ghost" in w for w in mr.warnings)
    ops, layers = where_time_goes(mr, top=3)
    # measured first by measured - bound (relu loses 12 ms, conv 2 ms), then the rest by bound
    assert [l["name"] for l in layers] == ["relu", "conv", "mm"]
    assert [o["op_type"] for o in ops] == ["Relu", "Conv", "MatMul", "Reshape"]
    assert ops[0]["excess_ms"] == pytest.approx(12.0) and ops[0]["share_of_measured"] == pytest.approx(20 / 32)
    assert ops[2]["measured_ms"] is None and ops[2]["compute_bound"] == 1


def test_without_measurements_layers_rank_by_bound():
    _, layers = where_time_goes(model_roofline(toy_analysis(), TOY, "fp32"))
    assert [l["name"] for l in layers] == ["conv", "relu", "mm", "reshape"]


def test_missing_peak_is_a_usage_error():
    with pytest.raises(UsageError) as e:
        model_roofline(toy_analysis(), TOY, "fp16")
    msg = str(e.value)
    assert "toy" in msg and "fp16" in msg and "devices.yaml" in msg and "\n" not in msg


def test_no_bandwidth_uses_the_compute_roof_with_a_warning():
    device = DeviceSpec(name="nobw", kind="cpu", peak_flops={"fp32": Peak(value=100e9)})
    mr = model_roofline(toy_analysis(), device, "fp32")
    assert all(l.bound in ("compute", "none") for l in mr.layers)
    assert mr.roofline_ms == pytest.approx(11.01)
    assert mr.ridge_intensity is None
    assert any("no bandwidth for device nobw" in w for w in mr.warnings)


def test_calibrated_roofs():
    cal = Calibration(
        timestamp="2025-01-01T00:00:00+00:00",
        method="test",
        peak_flops={"fp32": Peak(value=50e9, source="calibrated: test")},
        memory_bandwidth=Peak(value=5e9, source="calibrated: test"),
    )
    device = DeviceSpec(name="cpu", kind="cpu", peak_flops={"fp32": Peak(value=100e9)}, calibrated=cal)
    spec = model_roofline(toy_analysis(), device, "fp32")  # spec compute roof, calibrated bandwidth
    assert spec.peak_flops_per_s == 100e9 and spec.bandwidth_bytes_per_s == 5e9
    assert any("using the calibrated value" in w for w in spec.warnings)
    measured = model_roofline(toy_analysis(), device, "fp32", roof="calibrated")
    assert measured.peak_flops_per_s == 50e9 and measured.ideal_ms == pytest.approx(2 * spec.ideal_ms)


def test_batch_rescaling_keeps_weights_once():
    analysis = Analysis(
        [Node("fc", "Gemm", flops=2_000, bytes_read=1_400, bytes_written=100, params=250, param_bytes=1_000)]
    )
    mr = model_roofline(analysis, TOY, "fp32", batch_size=4)
    assert mr.flops == 8_000 and mr.macs == 4_000
    assert mr.layers[0].bytes == 1_000 + 4 * (400 + 100)
    assert model_roofline(analysis, TOY, "fp32").layers[0].bytes == 1_500


def test_to_dict_is_json_ready():
    mr = model_roofline(toy_analysis(), TOY, "fp32", measured_ms=40.0)
    data = json.loads(json.dumps(to_dict(mr)))
    assert data["layers"][3]["intensity"] is None  # the reshape moves no bytes
    assert data["gap"] == pytest.approx(40 / 19)


def test_fused_group_on_a_real_graph():
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from effbench.analysis.graph import analyze

    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Add", ["r", "x"], ["y"], name="add"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((8, 8, 3, 3), np.float32), "w")],
    )
    analysis = analyze(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    plain = model_roofline(analysis, TOY, "fp32")
    fused = model_roofline(analysis, TOY, "fp32", groups=[(["conv", "relu"], 0.5)], layer_times_ms={"add": 0.1})
    assert [l.name for l in fused.layers] == ["conv+relu", "add"]
    group = fused.layers[0]
    assert group.op_type == "Conv+Relu" and group.nodes == ["conv", "relu"] and group.measured_ms == 0.5
    separate = {l.name: l for l in plain.layers}
    assert group.flops == separate["conv"].flops + separate["relu"].flops
    # the conv output stays inside the kernel: 2 x 8x16x16 fp32 tensors never touch memory
    assert group.bytes == separate["conv"].bytes + separate["relu"].bytes - 2 * 8 * 16 * 16 * 4
    assert fused.flops == plain.flops
    with pytest.raises(UsageError, match="two fused groups"):
        model_roofline(analysis, TOY, "fp32", groups=[(["conv"], 1.0), (["conv", "relu"], 1.0)])
