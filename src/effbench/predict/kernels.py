"""The kernels a CPU runtime really runs, found on the ONNX graph by fusion rules (as nn-Meter
does on its devices): a convolution with its normalisation, activation and residual add; a linear
layer with its bias and activation; a matrix product of two activations with its scale; softmax,
normalisation, pooling; a chain of element-wise ops; a reshape, transpose, concat or slice.

Every kernel keeps its nodes, so it can be cut out of the model as a single-kernel ONNX graph and
measured on the device (`subgraph`), and a signature that says when two kernels are the same work.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Tuple

ACTIVATIONS = {
    "Relu",
    "Clip",
    "HardSwish",
    "HardSigmoid",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Gelu",
    "Softplus",
    "Mish",
    "PRelu",
}
ELEMENTWISE = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Erf",
    "Neg",
    "Exp",
    "Log",
    "Abs",
    "Min",
    "Max",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "Not",
} | ACTIVATIONS
NORMS = {"BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization"}
POOLS = {
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "ReduceMax",
    "ReduceSum",
    "ReduceMin",
    "ReduceL2",
    "LpPool",
}
# (kind, the nodes it covers, its attributes): what a matcher finds at a node
Match = Tuple[str, list[Any], dict[str, Any]]

DATA_MOVEMENT = {
    "Reshape": "reshape",
    "Flatten": "reshape",
    "Squeeze": "reshape",
    "Unsqueeze": "reshape",
    "Identity": "reshape",
    "Transpose": "transpose",
    "DepthToSpace": "transpose",
    "SpaceToDepth": "transpose",
    "Concat": "concat",
    "Split": "slice",
    "Slice": "slice",
    "Gather": "slice",
    "Expand": "expand",
    "Tile": "expand",
    "Pad": "pad",
    "Resize": "resize",
    "Upsample": "resize",
    "Cast": "reshape",
}
KERNEL_TYPES = (
    "conv",
    "dwconv",
    "pwconv",
    "linear",
    "matmul",
    "softmax",
    "norm",
    "pool",
    "elementwise",
    "reshape",
    "transpose",
    "concat",
    "slice",
    "expand",
    "pad",
    "resize",
)
ACT_CODES = {
    "": 0,
    "relu": 1,
    "relu6": 2,
    "hswish": 3,
    "hsigmoid": 4,
    "sigmoid": 5,
    "silu": 6,
    "gelu": 7,
    "tanh": 8,
    "other": 9,
}


@dataclass
class Kernel:
    type: str  # one of KERNEL_TYPES, or "op:<OpType>" for an operator no rule covers
    nodes: list[str]  # the ONNX node names it fuses, in graph order
    ops: list[str]
    inputs: list[str]  # external activation inputs
    outputs: list[str]
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    attrs: dict[str, Any] = field(default_factory=dict)  # kernel, stride, groups, act, residual
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    params: int = 0
    signature: str = ""

    @property
    def covered(self) -> bool:
        return not self.type.startswith("op:")

    def features(self) -> list[float]:
        return features_of(self.to_dict())

    def describe(self) -> str:
        a = self.attrs
        shape = "x".join(str(d) for d in (self.input_shapes[0] if self.input_shapes else []))
        parts = [shape]
        if "kernel" in a:
            parts.append(f"k{a['kernel']} s{a['stride']}" + (f" g{a['groups']}" if a.get("groups", 1) > 1 else ""))
        if "cout" in a:
            parts.append(f"->{a['cout']}")
        if a.get("act"):
            parts.append(a["act"])
        if a.get("residual"):
            parts.append("+res")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "type",
                "nodes",
                "ops",
                "inputs",
                "outputs",
                "input_shapes",
                "output_shapes",
                "attrs",
                "flops",
                "bytes_read",
                "bytes_written",
                "params",
                "signature",
            )
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Kernel:
        return cls(**data)


def _log(x: float) -> float:
    return math.log2(1.0 + max(0.0, float(x)))


def _dims(shape: list[int], n: int = 4) -> list[float]:
    tail = list(shape[-n:]) if shape else []
    return [0.0] * (n - len(tail)) + [float(d) for d in tail]


def features_of(k: dict[str, Any]) -> list[float]:
    """The regressors' inputs: work and traffic (log scale), shapes, and the kernel's attributes."""
    a = k.get("attrs") or {}
    first_in = k["input_shapes"][0] if k.get("input_shapes") else []
    first_out = k["output_shapes"][0] if k.get("output_shapes") else []
    return [
        _log(k.get("flops", 0)),
        _log(k.get("bytes_read", 0)),
        _log(k.get("bytes_written", 0)),
        _log(k.get("params", 0)),
        *_dims(first_in),
        *_dims(first_out),
        float(len(first_in)),
        float(a.get("kernel", 0)),
        float(a.get("stride", 0)),
        _log(a.get("groups", 0)),
        float(ACT_CODES.get(a.get("act", ""), ACT_CODES["other"])),
        float(bool(a.get("residual"))),
        float(len(k.get("nodes") or [])),
        float(len(k.get("inputs") or [])),
    ]


FEATURE_NAMES = [
    "log_flops",
    "log_read",
    "log_written",
    "log_params",
    "in0",
    "in1",
    "in2",
    "in3",
    "out0",
    "out1",
    "out2",
    "out3",
    "rank",
    "kernel",
    "stride",
    "log_groups",
    "act",
    "residual",
    "nodes",
    "inputs",
]


class _Detector:
    def __init__(self, graph: Any) -> None:
        from onnx import helper

        self.g = graph
        self.helper = helper
        self.consumers: dict[str, list] = {}
        for node in graph.nodes:
            for t in node.input:
                if t:
                    self.consumers.setdefault(t, []).append(node)
        self.outputs = set(graph.outputs)
        self.taken: set[str] = set()

    def is_const(self, t: str) -> bool:
        return t in self.g.consts

    def single(self, t: str) -> Any:
        """The only consumer of tensor t, when it has exactly one and is not a graph output."""
        users = self.consumers.get(t, [])
        if len(users) != 1 or t in self.outputs or users[0].name in self.taken:
            return None
        return users[0]

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                return self.helper.get_attribute_value(a)
        return default

    def activation(self, t: str) -> tuple[list[Any], str, str] | None:
        """(nodes, output tensor, name) of an activation applied to t, fused patterns included:
        x * sigmoid(x) (SiLU), x * hardsigmoid(x) (hard swish), the erf form of GELU."""
        users = [u for u in self.consumers.get(t, []) if u.name not in self.taken]
        if t in self.outputs or not users:
            return None
        if len(users) == 1 and users[0].op_type in ACTIVATIONS:
            node = users[0]
            name = {
                "Relu": "relu",
                "HardSwish": "hswish",
                "HardSigmoid": "hsigmoid",
                "Sigmoid": "sigmoid",
                "Tanh": "tanh",
                "Gelu": "gelu",
            }.get(node.op_type, "other")
            if node.op_type == "Clip":
                name = "relu6"
            return [node], node.output[0], name
        if len(users) == 2:
            gate = next((u for u in users if u.op_type in ("Sigmoid", "HardSigmoid")), None)
            mul = next((u for u in users if u.op_type == "Mul"), None)
            if gate is not None and mul is not None and set(mul.input) == {t, gate.output[0]}:
                return [gate, mul], mul.output[0], "silu" if gate.op_type == "Sigmoid" else "hswish"
            div = next((u for u in users if u.op_type == "Div"), None)
            if div is not None and mul is not None:
                erf = self.single(div.output[0])
                add = erf is not None and erf.op_type == "Erf" and self.single(erf.output[0])
                if add and add.op_type == "Add" and mul.input[1] == add.output[0] and mul.input[0] == t:
                    half = self.single(mul.output[0])
                    nodes = [div, erf, add, mul]
                    out = mul.output[0]
                    if half is not None and half.op_type == "Mul" and any(self.is_const(i) for i in half.input):
                        nodes.append(half)
                        out = half.output[0]
                    return nodes, out, "gelu"
        return None

    def absorb_act(self, nodes: list, t: str, attrs: dict) -> str:
        found = self.activation(t)
        if found:
            more, t, attrs["act"] = found
            nodes.extend(more)
        return t

    def residual(self, nodes: list, t: str, attrs: dict) -> str:
        add = self.single(t)
        if add is not None and add.op_type == "Add":
            other = [i for i in add.input if i != t]
            if len(other) == 1 and not self.is_const(other[0]) and self.g.shapes.get(other[0]) == self.g.shapes.get(t):
                nodes.append(add)
                attrs["residual"] = True
                return self.absorb_act(nodes, add.output[0], attrs)
        return t

    def conv(self, node: Any) -> Match:
        nodes, attrs = [node], dict[str, Any]()
        w = self.g.shapes.get(node.input[1]) or ()
        groups = int(self.attr(node, "group", 1))
        cin = (self.g.shapes.get(node.input[0]) or (0, 0))[1]
        kshape = list(w[2:]) or [1]
        attrs.update(
            kernel=int(max(kshape)),
            stride=int(max(self.attr(node, "strides", [1]) or [1])),
            groups=groups,
            cout=int(w[0]) if w else 0,
        )
        t = node.output[0]
        bn = self.single(t)
        if bn is not None and bn.op_type == "BatchNormalization":
            nodes.append(bn)
            t = bn.output[0]
        t = self.absorb_act(nodes, t, attrs)
        self.residual(nodes, t, attrs)
        if groups > 1 and groups == cin:
            kind = "dwconv"
        elif attrs["kernel"] == 1 and groups == 1 and attrs["stride"] == 1:
            kind = "pwconv"
        else:
            kind = "conv"
        return kind, nodes, attrs

    def linear(self, node: Any) -> Match:
        nodes, attrs = [node], dict[str, Any]()
        w: tuple[int, ...] = self.g.shapes.get(node.input[1]) or ()
        attrs["cout"] = int(w[0] if node.op_type == "Gemm" and self.attr(node, "transB", 0) else (w[-1] if w else 0))
        t = node.output[0]
        add = self.single(t)
        if (
            node.op_type == "MatMul"
            and add is not None
            and add.op_type == "Add"
            and any(self.is_const(i) for i in add.input)
        ):
            nodes.append(add)
            t = add.output[0]
        t = self.absorb_act(nodes, t, attrs)
        self.residual(nodes, t, attrs)
        return "linear", nodes, attrs

    def matmul(self, node: Any) -> Match:
        nodes, attrs = [node], dict[str, Any]()
        t = node.output[0]
        for _ in range(2):  # the attention scale and bias
            nxt = self.single(t)
            if nxt is not None and nxt.op_type in ("Mul", "Div", "Add") and any(self.is_const(i) for i in nxt.input):
                nodes.append(nxt)
                t = nxt.output[0]
        return "matmul", nodes, attrs

    def elementwise(self, node: Any) -> Match:
        nodes, attrs = [node], {}
        t = node.output[0]
        while True:
            act = self.activation(t)
            if act:
                more, t, attrs["act"] = act
                nodes.extend(more)
                continue
            nxt = self.single(t)
            if nxt is None or nxt.op_type not in ELEMENTWISE:
                return "elementwise", nodes, attrs
            nodes.append(nxt)
            t = nxt.output[0]

    def kernel_of(self, node: Any) -> Match:
        op = node.op_type
        weight_const = len(node.input) > 1 and self.is_const(node.input[1])
        if op in ("Conv", "ConvTranspose") and weight_const:
            return self.conv(node)
        if op in ("Gemm", "MatMul") and weight_const:
            return self.linear(node)
        if op in ("MatMul", "Gemm"):
            return self.matmul(node)
        if op in ("Softmax", "LogSoftmax"):
            return "softmax", [node], {}
        if op in NORMS:
            return "norm", [node], {}
        if op in POOLS:
            k = self.attr(node, "kernel_shape", None)
            return (
                "pool",
                [node],
                {"kernel": int(max(k)) if k else 0, "stride": int(max(self.attr(node, "strides", [1]) or [1]))},
            )
        if op in ELEMENTWISE:
            return self.elementwise(node)
        if op in DATA_MOVEMENT:
            return DATA_MOVEMENT[op], [node], {}
        return f"op:{op}", [node], {}


def load(onnx_model: Any, input_shape: list[int] | None = None) -> Any:
    """The shaped graph (analysis.graph.shaped_graph), its single input pinned to `input_shape`."""
    from effbench.analysis.graph import shaped_graph

    graph = shaped_graph(onnx_model)
    if (
        input_shape is not None
        and len(graph.inputs) == 1
        and list(graph.shapes[graph.inputs[0]] or ()) != list(input_shape)
    ):
        graph = shaped_graph(onnx_model, {graph.inputs[0]: list(input_shape)})
    return graph


def detect(graph: Any, precision: str = "fp32") -> list[Kernel]:
    """The kernels of a graph load() gave, in graph order (constant subgraphs folded away first, as
    runtimes do)."""
    from effbench.analysis.graph import aggregate, analyze

    analysis = analyze(graph, precision)
    det = _Detector(graph)
    kernels = []
    for node in graph.nodes:
        if node.name in det.taken:
            continue
        kind, nodes, attrs = det.kernel_of(node)
        det.taken.update(n.name for n in nodes)
        kernels.append(_make(kind, nodes, attrs, graph, analysis, aggregate))
    return kernels


def _make(kind: str, nodes: list[Any], attrs: dict[str, Any], graph: Any, analysis: Any, aggregate: Any) -> Kernel:
    produced = {t for n in nodes for t in n.output}
    inputs = []
    for n in nodes:
        for t in n.input:
            if t and t not in produced and t not in graph.consts and t not in inputs:
                inputs.append(t)
    member = {n.name for n in nodes}
    used_outside = {t for n in graph.nodes if n.name not in member for t in n.input} | set(graph.outputs)
    outputs = [t for n in nodes for t in n.output if t in used_outside] or [nodes[-1].output[0]]
    stats = aggregate(analysis, [n.name for n in nodes])
    kernel = Kernel(
        type=kind,
        nodes=[n.name for n in nodes],
        ops=[n.op_type for n in nodes],
        inputs=inputs,
        outputs=outputs,
        input_shapes=[list(graph.shapes[t]) for t in inputs],
        output_shapes=[list(graph.shapes[t]) for t in outputs],
        attrs=attrs,
        flops=int(stats.flops),
        bytes_read=int(stats.bytes_read),
        bytes_written=int(stats.bytes_written),
        params=int(stats.params),
    )
    kernel.signature = _signature(nodes, graph, kernel)
    return kernel


def _signature(nodes: list[Any], graph: Any, kernel: Kernel) -> str:
    """Same ops, attributes, input, weight and output shapes: the same work on the device."""
    from onnx import helper

    def attr_text(n: Any) -> list[tuple[str, str]]:
        return sorted((a.name, repr(helper.get_attribute_value(a))) for a in n.attribute)

    def const_text(t: str) -> list[Any]:
        value = graph.consts[t]
        return ["w", list(value.shape)] if value.size > 16 else ["c", value.ravel().tolist()]

    body = [
        [
            n.op_type,
            attr_text(n),
            [
                const_text(t)
                if t in graph.consts
                else (["in", kernel.inputs.index(t)] if t in kernel.inputs else ["int"])
                for t in n.input
                if t
            ],
        ]
        for n in nodes
    ]
    text = json.dumps([body, kernel.input_shapes, kernel.output_shapes], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cut(graph: Any, kernel: Kernel) -> Any:
    """The kernel cut out of its graph as a model of its own: its nodes, the constants they read, its
    external inputs as graph inputs (float32, static shapes) and its outputs."""
    from onnx import TensorProto, helper, numpy_helper

    by_name = {n.name: n for n in graph.nodes}
    nodes = [by_name[name] for name in kernel.nodes]
    consts = sorted({t for n in nodes for t in n.input if t and t in graph.consts})
    inits = [numpy_helper.from_array(graph.consts[t], t) for t in consts]
    ins = [
        helper.make_tensor_value_info(t, TensorProto.FLOAT, list(s)) for t, s in zip(kernel.inputs, kernel.input_shapes)
    ]
    outs = [
        helper.make_tensor_value_info(t, TensorProto.FLOAT, list(s))
        for t, s in zip(kernel.outputs, kernel.output_shapes)
    ]
    return helper.make_model(
        helper.make_graph(nodes, "kernel", ins, outs, inits),
        opset_imports=graph.proto.opset_import,
        ir_version=graph.proto.ir_version,
    )
