"""Per-node FLOPs, parameters and memory traffic of a shape-inferred ONNX graph.

The counting conventions are documented in docs/counting.md; keep the two in step.
"""

from __future__ import annotations

import heapq
import math
import os
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from effbench.analysis.graph_stats import GraphAnalysis, GroupStats, NodeStats
from effbench.backends.profiling import named_nodes
from effbench.errors import UsageError

ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

Shape = tuple[int, ...]


def analyze(
    model: str | os.PathLike | onnx.ModelProto,
    precision: str = "fp32",
    input_shapes: dict[str, list[int]] | None = None,
) -> GraphAnalysis:
    """Count MACs, FLOPs, parameters and bytes moved for every node of an ONNX model.

    `input_shapes` pins dynamic input dimensions (e.g. {"input": [1, 3, 224, 224]}). `model` may also be
    a graph shaped_graph() returned.
    """
    if precision not in ELEMENT_BYTES:
        raise UsageError(f"unknown precision {precision!r}; use one of {', '.join(ELEMENT_BYTES)}")
    elem = ELEMENT_BYTES[precision]
    graph = model if isinstance(model, _Graph) else _Graph.build(_load(model), input_shapes)

    stats = [_node_stats(node, graph, elem) for node in graph.nodes]
    weights = {t: graph.param_elements(t) for node in graph.nodes for t in _param_inputs(node, graph)}
    activations = {t: math.prod(s) * elem for t, s in graph.shapes.items() if t not in graph.consts and s is not None}
    uncounted: dict[str, int] = defaultdict(int)
    for node in graph.nodes:
        if node.op_type not in _COUNTERS:
            uncounted[node.op_type] += 1

    return GraphAnalysis(
        nodes=stats,
        macs=sum(s.macs for s in stats),
        flops=sum(s.flops for s in stats),
        other_flops=sum(s.other_flops for s in stats),
        params=sum(weights.values()),
        peak_activation_bytes=_peak_activation_bytes(graph, activations),
        precision=precision,
        input_shapes={t: list(graph.shapes[t] or ()) for t in graph.inputs},
        uncounted=dict(uncounted),
        folded_nodes=graph.folded,
        tensor_bytes=activations,
        weight_bytes={t: n * elem for t, n in weights.items()},
        weight_elements=weights,
        output_names=list(graph.outputs),
    )


def shaped_graph(
    model: str | os.PathLike | onnx.ModelProto, input_shapes: dict[str, list[int]] | None = None
) -> _Graph:
    """The graph as analyze() sees it: constants folded, topologically ordered, every shape static."""
    return _Graph.build(_load(model), input_shapes)


def aggregate(analysis: GraphAnalysis, node_names: list[str]) -> GroupStats:
    """Statistics of a fused kernel: tensors passed between its own nodes never touch memory."""
    members = [analysis.node(name) for name in node_names]
    produced = {t for s in members for t in s.outputs}
    member_names = set(node_names)
    consumed_outside = {t for s in analysis.nodes if s.name not in member_names for t in s.inputs} | set(
        analysis.output_names
    )

    external_inputs = {t for s in members for t in s.inputs if t not in produced}
    read = sum(analysis.tensor_bytes.get(t, 0) + analysis.weight_bytes.get(t, 0) for t in external_inputs)
    written = sum(analysis.tensor_bytes.get(t, 0) for t in produced if t in consumed_outside)
    flops = sum(s.flops for s in members)
    return GroupStats(
        nodes=list(node_names),
        macs=sum(s.macs for s in members),
        flops=flops,
        params=sum(analysis.weight_elements.get(t, 0) for t in external_inputs),
        bytes_read=read,
        bytes_written=written,
        intensity=_intensity(flops, read + written),
    )


# --------------------------------------------------------------------------- counting rules
# Each rule maps (node, input shapes, output shapes) to (macs, other_flops). Input shapes are
# aligned with node.input; an absent optional input has shape None.
CountRule = Callable[[onnx.NodeProto, list, list], tuple[int, int]]


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _numel(shape) -> int:
    return math.prod(shape)


def _present(ins: list, index: int) -> bool:
    return len(ins) > index and ins[index] is not None


def _conv(node, ins, outs, weight: int = 1, bias: int | None = 2):
    # Each output element is a dot product over (Cin / group) * prod(kernel).
    out = _numel(outs[0])
    return out * _numel(ins[weight][1:]), out if bias is not None and _present(ins, bias) else 0


def _conv_transpose(node, ins, outs):
    # Each input element is scattered into (Cout / group) * prod(kernel) outputs.
    return _numel(ins[0]) * _numel(ins[1][1:]), _numel(outs[0]) if _present(ins, 2) else 0


def _gemm(node, ins, outs):
    a, b = ins[0], ins[1]
    m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
    n = b[0] if _attr(node, "transB", 0) else b[1]
    return m * n * k, m * n if _present(ins, 2) else 0


def _matmul(node, ins, outs):
    # Holds for batched, broadcast and 1-D operands alike: every output element is a
    # length-K dot product, K being the last dimension of A.
    return _numel(outs[0]) * ins[0][-1], 0


def _einsum(node, ins, outs):
    operands = _attr(node, "equation").replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, shape in zip(operands, ins):
        for letter, dim in zip(_expand_ellipsis(term, len(shape)), shape):
            sizes[letter] = max(sizes.get(letter, 1), dim)
    iterations = math.prod(sizes.values())
    if len(operands) == 1:  # transpose (free) or reduction (one add per input element)
        return 0, 0 if _numel(outs[0]) == _numel(ins[0]) else _numel(ins[0])
    return iterations * (len(operands) - 1), 0


def _expand_ellipsis(term: str, rank: int) -> list[str]:
    if "..." not in term:
        return list(term)
    head, tail = term.split("...")
    n = rank - len(head) - len(tail)
    # Ellipsis dims broadcast right-aligned, so name them from the right.
    return list(head) + [f"...{n - i}" for i in range(n)] + list(tail)


def _elementwise(node, ins, outs, cost: int = 1):
    return 0, cost * _numel(outs[0])


def _variadic(node, ins, outs):
    # Sum / Max / Min / Mean of n inputs: n - 1 binary operations per element.
    return 0, max(len([s for s in ins if s is not None]) - 1, 1) * _numel(outs[0])


def _pool(node, ins, outs):
    return 0, _numel(outs[0]) * _numel(_attr(node, "kernel_shape"))


def _reduce(node, ins, outs):
    return 0, _numel(ins[0])


def _resize(node, ins, outs):
    taps = {"nearest": 1, "linear": 4, "bilinear": 4, "cubic": 16}
    return 0, _numel(outs[0]) * taps.get(_attr(node, "mode", "nearest"), 1)


def _gelu(node, ins, outs):
    # Div, Erf, Add, Mul, Mul; the tanh approximation takes about eight ops.
    return _elementwise(node, ins, outs, cost=8 if _attr(node, "approximate", "none") == "tanh" else 5)


def _zero(node, ins, outs):
    return 0, 0


# Fused ops cost what their standard decomposition costs at 1 FLOP per element per op, so an
# export that decomposes them (older opsets) counts the same as one that fuses them.
_ELEMENTWISE_COST = {
    **dict.fromkeys(
        "Add Sub Mul Div Pow Mod Neg Abs Sqrt Reciprocal Exp Log Erf Tanh Sigmoid Relu LeakyRelu "
        "PRelu Elu Selu Celu ThresholdedRelu Clip Floor Ceil Round Sign Sin Cos Tan Asin Acos Atan "
        "Sinh Cosh Asinh Acosh Atanh Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Xor "
        "Where IsNaN IsInf BitShift Shrink".split(),
        1,
    ),
    "Swish": 2,  # Sigmoid, Mul
    "HardSigmoid": 3,  # Mul, Add, Clip
    "HardSwish": 4,  # HardSigmoid, Mul
    "Softplus": 3,  # Exp, Add, Log
    "Softsign": 3,  # Abs, Add, Div
    "Mish": 5,  # Softplus, Tanh, Mul
    "QuantizeLinear": 2,  # scale, zero point
    "DequantizeLinear": 2,
    "BatchNormalization": 2,  # inference: statistics fold into one scale and one shift
    "Softmax": 5,  # ReduceMax, Sub, Exp, ReduceSum, Div
    "LogSoftmax": 5,
    "LayerNormalization": 7,  # ReduceMean, Sub, Pow, ReduceMean, Div, Mul, Add
    "GroupNormalization": 7,
    "InstanceNormalization": 7,
    "MeanVarianceNormalization": 6,
    "RMSNormalization": 4,  # Pow, ReduceMean, Div, Mul
    "LpNormalization": 3,
}

_DATA_MOVEMENT = (
    "Reshape Transpose Concat Slice Gather GatherElements GatherND Split Flatten Shape Size Squeeze "
    "Unsqueeze Expand Tile Pad Identity Cast CastLike Dropout DepthToSpace SpaceToDepth ScatterND "
    "ScatterElements Constant ConstantOfShape Range NonZero OneHot EyeLike Trilu Compress "
    "ReverseSequence"
).split()

_COUNTERS: dict[str, CountRule] = {
    **{op: partial(_elementwise, cost=cost) for op, cost in _ELEMENTWISE_COST.items()},
    **dict.fromkeys(_DATA_MOVEMENT, _zero),
    **dict.fromkeys(["Sum", "Max", "Min", "Mean"], _variadic),
    "Gelu": _gelu,
    "Conv": _conv,
    "ConvInteger": partial(_conv, bias=None),
    "QLinearConv": partial(_conv, weight=3, bias=8),
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MatMulInteger": _matmul,
    "QLinearMatMul": _matmul,
    "Einsum": _einsum,
    **dict.fromkeys(["MaxPool", "AveragePool", "LpPool"], _pool),
    **dict.fromkeys(["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"], _reduce),
    **dict.fromkeys(
        "ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum "
        "ReduceLogSumExp ReduceSumSquare ArgMax ArgMin".split(),
        _reduce,
    ),
    "Resize": _resize,
    "Upsample": _resize,
}

# Outputs that alias their input at runtime: no bytes moved, no new buffer.
_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}

# Constant inputs that are configuration rather than weights (never parameters).
_NON_WEIGHT_INPUTS = {"Resize": {1, 2, 3}, "Upsample": {1}}


# --------------------------------------------------------------------------- per-node stats
def _node_stats(node: onnx.NodeProto, graph: _Graph, elem: int) -> NodeStats:
    ins = [graph.shapes.get(t) if t else None for t in node.input]
    outs = [graph.shapes.get(t) if t else None for t in node.output]
    counter = _COUNTERS.get(node.op_type, _zero)
    macs, other = counter(node, ins, outs)
    params = sum(graph.param_elements(t) for t in _param_inputs(node, graph))

    if node.op_type in _VIEW_OPS:
        read = written = 0
    else:
        activations = {t for t in node.input if t and t not in graph.consts}
        read = (sum(_numel(graph.shapes[t]) for t in activations) + params) * elem
        written = sum(_numel(graph.shapes[t]) for t in node.output if t in graph.shapes) * elem

    flops = 2 * macs + other
    return NodeStats(
        name=node.name,
        op_type=node.op_type,
        inputs=[t for t in node.input if t],
        outputs=[t for t in node.output if t],
        macs=macs,
        other_flops=other,
        flops=flops,
        params=params,
        param_bytes=params * elem,
        bytes_read=read,
        bytes_written=written,
        intensity=_intensity(flops, read + written),
    )


def _param_inputs(node: onnx.NodeProto, graph: _Graph) -> list[str]:
    skip = _NON_WEIGHT_INPUTS.get(node.op_type, set())
    names = [t for i, t in enumerate(node.input) if t and i not in skip and graph.is_weight(t)]
    return list(dict.fromkeys(names))


def _intensity(flops: int, moved: int) -> float:
    return flops / moved if moved else 0.0


def _peak_activation_bytes(graph: _Graph, sizes: dict[str, int]) -> int:
    """Peak live activation bytes in topological order; a buffer is freed after its last reader."""
    buffer = {t: t for t in graph.inputs}  # tensor -> the tensor that owns its memory
    for node in graph.nodes:
        for index, out in enumerate(node.output):
            source = node.input[0] if node.input else ""
            aliased = index == 0 and node.op_type in _VIEW_OPS and source in buffer
            buffer[out] = buffer[source] if aliased else out

    last_read: dict[str, float] = {}
    for index, node in enumerate(graph.nodes):
        for t in node.input:
            if t in buffer:
                last_read[buffer[t]] = index
    for t in graph.outputs:
        if t in buffer:
            last_read[buffer[t]] = math.inf

    live = sum(sizes.get(t, 0) for t in graph.inputs)
    peak = live
    for index, node in enumerate(graph.nodes):
        new = [t for t in node.output if buffer.get(t) == t]
        live += sum(sizes.get(t, 0) for t in new)
        peak = max(peak, live)
        freed = {buffer[t] for t in node.input if t in buffer and last_read[buffer[t]] == index}
        freed |= {t for t in new if t not in last_read}  # outputs nobody reads
        live -= sum(sizes.get(t, 0) for t in freed)
    return peak


# --------------------------------------------------------------------------- graph preparation
def _load(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise UsageError(f"ONNX model not found: {path}")
        try:
            proto = onnx.load(str(path))
        except Exception as exc:  # protobuf's DecodeError, or onnx's own errors for external data
            reason = type(exc).__name__
            raise UsageError(f"{path} is not a readable ONNX model ({reason}); re-export it") from exc
    else:
        kind = type(model).__name__
        raise UsageError(f"expected a path to an .onnx file or an onnx.ModelProto, got {kind}")
    if not proto.graph.node:  # protobuf parses some non-ONNX bytes as an empty message
        source = model if isinstance(model, (str, os.PathLike)) else "the ONNX model"
        raise UsageError(f"{source} holds no ONNX graph nodes; re-export it")
    return proto


def _static_shape(value_info: onnx.ValueInfoProto) -> Shape | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims = tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def _topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Kahn's algorithm, keeping the file's order among ready nodes."""
    producers = {t: i for i, n in enumerate(nodes) for t in n.output}
    waiting = {i: {t for t in n.input if t in producers and t not in available} for i, n in enumerate(nodes)}
    readers = defaultdict(list)
    for i, deps in waiting.items():
        for t in deps:
            readers[producers[t]].append(i)
    ready = [i for i, deps in waiting.items() if not deps]
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers[i]:
            waiting[j] -= set(nodes[i].output)
            if not waiting[j]:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        raise UsageError("the ONNX graph has a cycle; re-export it")
    return [nodes[i] for i in order]


_RANDOM_OPS = set("RandomNormal RandomUniform RandomNormalLike RandomUniformLike Multinomial Bernoulli".split())
_MAX_FOLD_ELEMENTS = 1 << 24  # larger constant results stay in the graph, as runtimes also do


class _Graph:
    """The graph with constants folded and every tensor's static shape known."""

    def __init__(self, proto, nodes, consts, shapes, inputs, outputs, folded):
        self.proto = proto
        self.nodes: list[onnx.NodeProto] = nodes
        self.consts: dict[str, np.ndarray] = consts
        self.shapes: dict[str, Shape | None] = shapes
        self.inputs: list[str] = inputs
        self.outputs: list[str] = outputs
        self.folded: list[str] = folded

    @classmethod
    def build(cls, proto: onnx.ModelProto, input_shapes: dict[str, list[int]] | None) -> _Graph:
        g = proto.graph
        consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        input_infos = [vi for vi in g.input if vi.name not in consts]
        input_infos = _pin_inputs(input_infos, input_shapes or {})
        outputs = [vi.name for vi in g.output]
        nodes = _topological(named_nodes(g.node), set(consts) | {vi.name for vi in input_infos})
        graph = cls(proto, nodes, consts, {}, [vi.name for vi in input_infos], outputs, [])
        graph._fold(input_infos)
        graph._check_shapes()
        for t, value in graph.consts.items():
            graph.shapes[t] = value.shape
        return graph

    def is_weight(self, tensor: str) -> bool:
        # Shape vectors, indices and scalar literals (x * 0.5) are constants but not weights.
        value = self.consts.get(tensor)
        if value is None or value.size <= 1:
            return False
        return value.dtype.kind == "f" or value.dtype in (np.int8, np.uint8)

    def param_elements(self, tensor: str) -> int:
        return int(self.consts[tensor].size)

    def _fold(self, input_infos: list[onnx.ValueInfoProto]) -> None:
        """Evaluate nodes whose inputs are all constant (or static shapes) until nothing changes.

        onnx shape inference alone cannot see through shape arithmetic such as Shape -> Mod -> Pad,
        so after each folding pass the shapes are inferred again.
        """
        opset = {op.domain or "": op.version for op in self.proto.opset_import}
        while True:
            self.shapes = self._infer(input_infos)
            remaining = []
            for node in self.nodes:
                values = self._evaluate(node, opset)
                if values is None:
                    remaining.append(node)
                else:
                    self.consts.update(zip(node.output, values))
                    self.folded.append(node.name)
            if len(remaining) == len(self.nodes):
                return
            self.nodes = remaining

    def _evaluate(self, node: onnx.NodeProto, opset: dict[str, int]) -> list[np.ndarray] | None:
        if node.op_type in _RANDOM_OPS or node.domain not in ("", "ai.onnx"):
            return None
        if set(node.output) & set(self.outputs) or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
        ):
            return None
        if node.op_type in ("Shape", "Size"):
            shape = self.shapes.get(node.input[0])
            if shape is None:
                return None
            if node.op_type == "Size":
                return [np.array(_numel(shape), dtype=np.int64)]
            start, end = _attr(node, "start", 0), _attr(node, "end", len(shape))
            return [np.array(shape[start:end], dtype=np.int64)]
        if not all(t in self.consts for t in node.input if t):
            return None
        if any(_numel(self.shapes.get(t) or ()) > _MAX_FOLD_ELEMENTS for t in node.output):
            return None
        if node.op_type == "Identity":
            return [self.consts[node.input[0]]]
        try:
            evaluator = ReferenceEvaluator(node, opsets={"": opset.get("", opset.get("ai.onnx", 17))})
            feeds = {t: self.consts[t] for t in node.input if t}
            return [np.asarray(v) for v in evaluator.run(None, feeds)]
        except Exception:  # an op the reference runtime lacks: leave the node in the graph
            return None

    def _infer(self, input_infos: list[onnx.ValueInfoProto]) -> dict[str, Shape | None]:
        """Shapes of all tensors, from a copy of the graph whose large weights are bare declarations.

        Weights only need their type for inference, and leaving out their data keeps every pass
        cheap and sidesteps the 2 GB protobuf limit.
        """
        small, declared = [], []
        for name, value in self.consts.items():
            if value.size <= 1024:
                small.append(numpy_helper.from_array(value, name))
            else:
                dtype = helper.np_dtype_to_tensor_dtype(value.dtype)
                declared.append(helper.make_tensor_value_info(name, dtype, value.shape))
        # Outputs are declared untyped: a symbolic batch dim there would survive pinned input shapes.
        outputs = [helper.make_empty_tensor_value_info(name) for name in self.outputs]
        skeleton = helper.make_model(
            helper.make_graph(self.nodes, "skeleton", input_infos + declared, outputs, small),
            opset_imports=self.proto.opset_import,
            ir_version=self.proto.ir_version,
            functions=self.proto.functions,
        )
        try:
            inferred = shape_inference.infer_shapes(skeleton, data_prop=True)
        except Exception as exc:
            raise UsageError(f"ONNX shape inference failed: {str(exc).splitlines()[0]}") from exc
        g = inferred.graph
        return {vi.name: _static_shape(vi) for vi in [*g.input, *g.value_info, *g.output]}

    def _check_shapes(self) -> None:
        for name in self.inputs:
            if self.shapes.get(name) is None:
                raise UsageError(
                    f"input {name!r} has a dynamic shape; export with fixed input shapes "
                    f"or pass input_shapes={{{name!r}: [...]}}"
                )
        for node in self.nodes:
            for t in [*node.input, *node.output]:
                if t and t not in self.consts and self.shapes.get(t) is None:
                    raise UsageError(
                        f"shape of tensor {t!r} ({node.op_type} node {node.name!r}) is unknown after "
                        "shape inference; export the model with fixed input shapes (no dynamic axes)"
                    )
        self.shapes = {t: s for t, s in self.shapes.items() if s is not None}


def _pin_inputs(infos: list[onnx.ValueInfoProto], pinned: dict[str, list[int]]) -> list[onnx.ValueInfoProto]:
    known = {vi.name for vi in infos}
    unknown = set(pinned) - known
    if unknown:
        raise UsageError(f"input_shapes names {sorted(unknown)} but the model's inputs are {sorted(known)}")
    result = []
    for vi in infos:
        if vi.name in pinned:
            vi = helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, list(pinned[vi.name]))
        result.append(vi)
    return result
