"""Per-layer profiles mapped through fused kernels back to the ONNX graph.

A runtime rarely executes the ONNX graph node by node: it fuses Conv + BatchNorm + Relu into one
kernel, folds shape arithmetic away, inserts layout reorders. To put a roofline bound next to a
measured kernel, each kernel is mapped back to the group of ONNX nodes it covers; the group's FLOPs
are its nodes' sum and its bytes its external inputs, outputs and weights (`graph.aggregate`).

How each runtime is mapped:

- ONNX Runtime: kernel names in its profile are node names of the *optimized* graph, which is saved
  once (`SessionOptions.optimized_model_filepath`, same optimisation level and providers). Each
  optimized node is mapped by walking back from its outputs through the ORIGINAL graph's producers
  until reaching its inputs, constants, graph inputs or a tensor another kernel produces; the nodes
  walked are its group. Tensors of the NCHWc layout (ReorderInput / ReorderOutput) are traced to
  the original tensors they carry.
- OpenVINO: each executed layer of the performance counters is the runtime-model op of the same
  friendly name; its rt_info `originalLayersNames` lists the OV-model names it fused, which the ONNX
  frontend made from ONNX node names (or output tensor names, or "<node>/<suffix>" for the parts
  of a decomposed node).
- Either runtime: ONNX nodes that no kernel claims by name or walk (a transformation that dropped
  the original names) are placed structurally: in a name-less kernel between their producers and
  consumers, else in the kernel they feed from (post-op fusion), else the one they feed.
- torch eager: aten ops carry no ONNX node names, so only an op-type comparison is possible.

Kernels that cover no ONNX node (layout reorders, memory copies, inputs/outputs) are reported as
unmapped time with a reason, never hidden. A node claimed by two kernels goes to the first one
executed, with a warning.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# --------------------------------------------------------------------------- kernel kinds
# Kernels that move data between layouts or memories: they carry tensors, they compute nothing.
LAYOUT_KERNELS = {"ReorderInput", "ReorderOutput", "Reorder", "MemcpyToHost", "MemcpyFromHost", "Memcpy"}
IO_KERNELS = {"Parameter", "Result", "Input", "Output", "Const", "Constant"}

UNMAPPED_REASONS = {
    "layout": "layout reorder (inserted by the runtime, no ONNX node)",
    "copy": "memory copy between devices",
    "io": "graph input/output",
    "not-in-graph": "not found in the runtime's graph",
    "no-names": "the runtime kept no original names and no graph position placed it",
    "no-nodes": "covers no ONNX node",
    "torch-op": "runtime op with no ONNX counterpart (allocation, copy, dispatch)",
}

# aten op -> the ONNX op type the exporter emits for it (eager torch has no ONNX node names)
_TORCH_OPS: dict[str, str] = {
    **dict.fromkeys(["convolution", "_convolution", "conv1d", "conv2d", "conv3d", "mkldnn_convolution",
                     "cudnn_convolution", "_slow_conv2d_forward", "thnn_conv2d", "_conv_depthwise2d",
                     "_nnpack_spatial_convolution", "slow_conv_dilated2d", "convolution_overrideable",
                     "_mkldnn_convolution"], "Conv"),
    **dict.fromkeys(["conv_transpose2d", "convolution_backward", "slow_conv_transpose2d"], "ConvTranspose"),
    **dict.fromkeys(["addmm", "linear", "_addmm_activation", "mkldnn_linear"], "Gemm"),
    **dict.fromkeys(["mm", "bmm", "matmul", "baddbmm", "einsum", "_scaled_dot_product_flash_attention_for_cpu",
                     "scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
                     "_scaled_dot_product_efficient_attention"], "MatMul"),
    **dict.fromkeys(["batch_norm", "_batch_norm_impl_index", "native_batch_norm", "cudnn_batch_norm",
                     "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"], "BatchNormalization"),
    **dict.fromkeys(["layer_norm", "native_layer_norm"], "LayerNormalization"),
    **dict.fromkeys(["group_norm", "native_group_norm"], "GroupNormalization"),
    **dict.fromkeys(["relu", "relu_", "threshold", "threshold_", "clamp_min", "clamp_min_"], "Relu"),
    **dict.fromkeys(["hardswish", "hardswish_"], "HardSwish"),
    **dict.fromkeys(["hardsigmoid", "hardsigmoid_"], "HardSigmoid"),
    **dict.fromkeys(["sigmoid", "sigmoid_", "silu", "silu_"], "Sigmoid"),
    **dict.fromkeys(["gelu", "gelu_"], "Gelu"),
    **dict.fromkeys(["tanh", "tanh_"], "Tanh"),
    **dict.fromkeys(["hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_max", "clamp_max_"], "Clip"),
    **dict.fromkeys(["add", "add_"], "Add"),
    **dict.fromkeys(["sub", "sub_", "rsub"], "Sub"),
    **dict.fromkeys(["mul", "mul_"], "Mul"),
    **dict.fromkeys(["div", "div_"], "Div"),
    **dict.fromkeys(["softmax", "_softmax", "log_softmax", "_log_softmax"], "Softmax"),
    **dict.fromkeys(["adaptive_avg_pool2d", "_adaptive_avg_pool2d", "mean"], "GlobalAveragePool"),
    **dict.fromkeys(["avg_pool2d"], "AveragePool"),
    **dict.fromkeys(["max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d"], "MaxPool"),
    **dict.fromkeys(["cat", "_cat", "stack"], "Concat"),
    **dict.fromkeys(["view", "reshape", "_reshape_alias", "_unsafe_view", "flatten", "unflatten", "squeeze",
                     "unsqueeze", "expand", "as_strided"], "Reshape"),
    **dict.fromkeys(["permute", "transpose", "t", "contiguous", "clone"], "Transpose"),
    **dict.fromkeys(["slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind"], "Slice"),
    **dict.fromkeys(["index", "index_select", "gather", "embedding"], "Gather"),
    **dict.fromkeys(["pad", "constant_pad_nd", "reflection_pad2d", "replication_pad2d"], "Pad"),
    **dict.fromkeys(["upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d", "_upsample_bilinear2d_aa"],
                    "Resize"),
    **dict.fromkeys(["sum"], "ReduceSum"),
    **dict.fromkeys(["amax", "max"], "ReduceMax"),
    **dict.fromkeys(["sqrt", "rsqrt"], "Sqrt"),
    **dict.fromkeys(["pow"], "Pow"),
    **dict.fromkeys(["exp"], "Exp"),
    **dict.fromkeys(["erf"], "Erf"),
}


def torch_op_type(aten_name: str) -> str | None:
    """ONNX op type of an aten op ('aten::conv2d' -> 'Conv'), None for runtime overhead."""
    return _TORCH_OPS.get(aten_name.split("::")[-1])


# --------------------------------------------------------------------------- the mapping
@dataclass
class Kernel:
    """One executed runtime kernel/layer and the ONNX nodes it covers."""

    name: str
    kernel_type: str
    ms: float
    nodes: list[str] = field(default_factory=list)  # ONNX node names, claim order
    how: str = ""  # "runtime" | "name" | "identical" | "walk" | "structure" | "fused-upstream" | ...
    reason: str | None = None  # why it covers nothing (a key of UNMAPPED_REASONS)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mapping:
    kernels: list[Kernel]
    method: str
    untimed: dict[str, list[str]] = field(default_factory=dict)  # layer that did not run (in place) -> nodes
    warnings: list[str] = field(default_factory=list)
    edges: dict[str, list[str]] = field(default_factory=dict)  # runtime graph: layer -> layers feeding it
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # layer -> original names matching no node

    def owner(self) -> dict[str, str]:
        """ONNX node -> name of the kernel (or untimed layer) that covers it."""
        out: dict[str, str] = {}
        for k in self.kernels:
            for n in k.nodes:
                out.setdefault(n, k.name)
        for layer, nodes in self.untimed.items():
            for n in nodes:
                out.setdefault(n, layer)
        return out


class OnnxGraph:
    """The original ONNX graph, with node names exactly as `graph.analyze` gives them."""

    def __init__(self, proto):
        from effbench.analysis.graph import _named  # the same naming rule as the analysis

        g = proto.graph
        self.nodes = _named(g.node)
        self.by_name = {n.name: n for n in self.nodes}
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for n in self.nodes:
            for t in n.output:
                if t:
                    self.producer[t] = n.name
            for t in n.input:
                if t:
                    self.consumers[t].append(n.name)
        self.initializers = {t.name for t in g.initializer}
        self.inputs = {vi.name for vi in g.input} - self.initializers
        self.outputs = [vi.name for vi in g.output]
        self.order = {n.name: i for i, n in enumerate(self.nodes)}
        self.tensors = set(self.producer) | self.initializers | self.inputs

    @classmethod
    def load(cls, path) -> OnnxGraph:
        import onnx

        return cls(onnx.load(str(path), load_external_data=False))

    def tensor_order(self, t: str) -> int:
        p = self.producer.get(t)
        return self.order[p] if p is not None else -1

    def resolve_name(self, name: str) -> str | None:
        """An OV-model / runtime name -> ONNX node: node name, output tensor name, or '<node>/<suffix>'."""
        if name in self.by_name:
            return name
        if name in self.producer:
            return self.producer[name]
        prefix = name
        while "/" in prefix.strip("/"):
            prefix = prefix.rsplit("/", 1)[0]
            if prefix in self.by_name:
                return prefix
            if prefix in self.producer:
                return self.producer[prefix]
        return None

    def walk_back(self, starts: Iterable[str], stops: set[str]) -> list[str]:
        """Nodes computing `starts` from `stops` (the start tensors themselves are never stops)."""
        seen: set[str] = set()
        walked: list[str] = []
        stack = [(t, True) for t in starts]
        visited: set[str] = set()
        while stack:
            t, is_start = stack.pop()
            if t in visited or (not is_start and t in stops):
                continue
            visited.add(t)
            p = self.producer.get(t)
            if p is None or p in seen:
                continue
            seen.add(p)
            walked.append(p)
            node = self.by_name[p]
            if node.op_type in ("Shape", "Size"):  # reads only the shape: not the data's producer
                continue
            stack.extend((i, False) for i in node.input if i)
        walked.sort(key=lambda n: self.order[n])
        return walked


def _claim(kernels: list[Kernel], warnings: list[str]) -> None:
    """A node claimed by two kernels goes to the first one executed."""
    first: dict[str, str] = {}
    conflicts: list[str] = []
    for k in kernels:
        kept = []
        for n in k.nodes:
            if n in first:
                conflicts.append(f"{n} (kept in {first[n]}, also claimed by {k.name})")
                continue
            first[n] = k.name
            kept.append(n)
        k.nodes = kept
    if conflicts:
        warnings.append(f"{len(conflicts)} ONNX node(s) claimed by two kernels went to the first: "
                        + "; ".join(conflicts[:3]) + (" ..." if len(conflicts) > 3 else ""))


def _reason_for_type(kernel_type: str) -> str | None:
    if kernel_type in ("MemcpyToHost", "MemcpyFromHost", "Memcpy"):
        return "copy"
    if kernel_type in LAYOUT_KERNELS:
        return "layout"
    if kernel_type in IO_KERNELS:
        return "io"
    return None


# --------------------------------------------------------------------------- ONNX Runtime
def ort_optimized_graph(onnx_path, cfg=None, directory=None) -> Path:
    """Save the graph ONNX Runtime executes for `onnx_path` (same optimisation level and providers
    as the onnxruntime backend) and return its path."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    directory = Path(directory or tempfile.mkdtemp(prefix="effbench-ort-opt-"))
    out = directory / "optimized.onnx"
    so.optimized_model_filepath = str(out)
    providers = ["CPUExecutionProvider"]
    if cfg is not None and cfg.device.split(":")[0] == "cuda":
        from effbench.backends.onnxruntime_backend import _providers

        providers = _providers(cfg)[1]
    ort.InferenceSession(str(onnx_path), so, providers=providers)
    return out


def map_onnxruntime(layers, original: OnnxGraph, optimized_proto, folded: set[str] = frozenset()) -> Mapping:
    """Map ORT kernels (named after optimized-graph nodes) to the original graph's nodes."""
    warnings: list[str] = []
    opt_nodes = {n.name: n for n in optimized_proto.graph.node}
    opt_producer: dict[str, Any] = {}
    opt_consumers: dict[str, list] = defaultdict(list)
    for n in optimized_proto.graph.node:
        for t in n.output:
            opt_producer[t] = n
        for t in n.input:
            if t:
                opt_consumers[t].append(n)
    opt_initializers = {t.name for t in optimized_proto.graph.initializer}
    folded_outputs = {t for name in folded for t in original.by_name[name].output if name in original.by_name}

    def equivalents(t: str, depth: int = 0) -> list[str]:
        """Original tensors that optimized tensor `t` carries (earliest first)."""
        if t in original.tensors:
            return [t]
        if depth > 8:
            return []
        p = opt_producer.get(t)
        if p is not None and p.op_type in LAYOUT_KERNELS and p.input:
            return equivalents(p.input[0], depth + 1)
        found: set[str] = set()
        for c in opt_consumers.get(t, []):
            if c.op_type in LAYOUT_KERNELS:
                for o in c.output:
                    found.update(equivalents(o, depth + 1) if o not in original.tensors else [o])
        if not found and p is not None:
            for suffix in ("_nchwc", "_nhwc"):  # layout transformers name a node after its output
                if p.name.endswith(suffix) and p.name[: -len(suffix)] in original.tensors:
                    found.add(p.name[: -len(suffix)])
        return sorted(found, key=original.tensor_order)

    kernels: list[Kernel] = []
    raw: dict[str, list[str]] = {}  # kernel -> original tensors its outputs carry
    hinted: dict[str, str] = {}  # optimized tensor -> original tensor known by its producer's name only
    for lt in layers:
        k = Kernel(lt.name, lt.op_type, float(lt.time_ms), extra=dict(lt.extra or {}))
        kernels.append(k)
        node = opt_nodes.get(lt.name)
        if lt.nodes:
            k.nodes, k.how = list(lt.nodes), "runtime"
        elif node is None:
            k.reason = "not-in-graph"
        else:
            raw[k.name] = []
            same = original.by_name.get(node.name)  # identical names map 1:1
            if same is not None and same.op_type != node.op_type:
                same = None
            for j, o in enumerate(node.output):
                eq = equivalents(o) if o else []
                if not eq and same is not None and j < len(same.output) and same.output[j]:
                    eq = [same.output[j]]
                    hinted[o] = eq[0]
                if eq:
                    raw[k.name].append(eq[0])
                    if o not in original.tensors and not any(c.op_type in LAYOUT_KERNELS
                                                             for c in opt_consumers.get(o, [])):
                        hinted[o] = eq[0]

    def input_equivalents(t: str) -> set[str]:
        found = set(equivalents(t)[:1])
        if t in hinted:
            found.add(hinted[t])
        p = opt_producer.get(t)
        if p is not None and p.op_type in LAYOUT_KERNELS and p.input and p.input[0] in hinted:
            found.add(hinted[p.input[0]])
        return found

    # A kernel known only by its name may have fused its output's consumer too (the residual Add of
    # an NCHWc Conv): extend those outputs forward, producers first, before anyone walks.
    raw_anchors = {t for ts in raw.values() for t in ts}
    starts: dict[str, list[str]] = {}
    for node in optimized_proto.graph.node:
        if node.name not in raw:
            continue
        ins = {e for i in node.input if i for e in input_equivalents(i)}
        out = []
        for o in node.output:
            eq = equivalents(o) if o else []
            if not eq and o in hinted:
                eq = [hinted[o]]
            if not eq:
                continue
            t = eq[0]
            if o in hinted and original.producer.get(t) != node.name:
                t = _extend_forward(original, t, ins, raw_anchors - {t})
                hinted[o] = t
            out.append(t)
        starts[node.name] = out

    anchors = {t for ts in starts.values() for t in ts} | raw_anchors
    stops_common = original.initializers | opt_initializers | original.inputs | folded_outputs
    for k in kernels:
        if k.name not in starts:
            continue
        node = opt_nodes[k.name]
        own = set(starts[k.name]) | set(raw[k.name])
        ins = {e for i in node.input if i for e in input_equivalents(i)}
        k.nodes = original.walk_back([t for t in starts[k.name] if t not in ins], stops_common | ins | (anchors - own))
        k.how = "identical" if k.nodes == [k.name] else "walk"
        if not k.nodes:
            k.reason = _reason_for_type(k.kernel_type) or "no-nodes"
    _claim(kernels, warnings)
    for k in kernels:
        if not k.nodes and k.reason is None:
            k.reason = _reason_for_type(k.kernel_type) or "no-nodes"
    edges = {}
    for k in kernels:
        node = opt_nodes.get(k.name)
        if node is not None:
            edges[k.name] = [opt_producer[i].name for i in node.input if i in opt_producer]
    return Mapping(kernels, "onnxruntime: optimized graph walked back to the original", warnings=warnings,
                   edges=edges)


def _extend_forward(g: OnnxGraph, t: str, kernel_inputs: set[str], other_anchors: set[str]) -> str:
    """A kernel named after tensor t may have fused t's single consumer too (a residual Add whose
    other input is one of the kernel's inputs, an activation): follow while no other kernel
    produces the consumer's output."""
    for _ in range(4):
        readers = [r for r in g.consumers.get(t, []) if g.by_name[r].op_type not in ("Shape", "Size")]
        if len(readers) != 1 or t in g.outputs:
            return t
        node = g.by_name[readers[0]]
        if len(node.output) != 1 or node.output[0] in other_anchors:
            return t
        others = [i for i in node.input if i and i != t]
        if not all(i in kernel_inputs or i in g.initializers for i in others):
            return t
        if node.op_type not in _FUSABLE_POST_OPS:
            return t
        t = node.output[0]
    return t


_FUSABLE_POST_OPS = set("Add Sum Mul Sub Div Relu LeakyRelu Clip Sigmoid HardSigmoid HardSwish Tanh Gelu Swish "
                        "BatchNormalization".split())


# --------------------------------------------------------------------------- OpenVINO
@dataclass
class RuntimeOp:
    """One op of OpenVINO's runtime (execution) model."""

    name: str
    layer_type: str
    original_names: list[str]
    inputs: list[str]  # friendly names of the ops feeding it
    exec_order: int = -1


def openvino_runtime_ops(xml_path, cfg, input_shape) -> list[RuntimeOp]:
    """Compile the IR as the openvino backend does (same hint, precision, threads, streams) and read
    the runtime model: the layers the performance counters name, with their original layer names."""
    import openvino as ov

    from effbench.backends.openvino_backend import _OV_PRECISION

    core = ov.Core()
    model = core.read_model(str(xml_path))
    if input_shape and list(model.inputs[0].get_partial_shape()) != list(input_shape):
        model.reshape({model.inputs[0].any_name: ov.PartialShape(list(input_shape))})
    hint = (cfg.options.get("hint") if cfg else None) or (
        "THROUGHPUT" if cfg is not None and cfg.scenario == "throughput" else "LATENCY")
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint.upper(),
                              "INFERENCE_PRECISION_HINT": _OV_PRECISION.get(cfg.precision if cfg else "fp32", "f32")}
    if cfg is not None and cfg.threads:
        config["INFERENCE_NUM_THREADS"] = int(cfg.threads)
    if cfg is not None and "streams" in cfg.options:
        config["NUM_STREAMS"] = cfg.options["streams"]
    compiled = core.compile_model(model, "CPU", config)
    ops = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()

        def get(key: str) -> str:
            if key not in info:
                return ""
            value = info[key]
            return value.astype(str) if hasattr(value, "astype") else str(value)

        names = [s.strip() for s in get("originalLayersNames").split(",") if s.strip()]
        try:
            exec_order = int(get("execOrder"))
        except ValueError:
            exec_order = -1
        ops.append(RuntimeOp(op.get_friendly_name(), get("layerType") or op.get_type_name(), names,
                             [i.get_source_output().get_node().get_friendly_name() for i in op.inputs()],
                             exec_order))
    return ops


_GENERATED_ID = re.compile(r"_\d+")


def match_runtime_ops(layers, runtime_ops: list[RuntimeOp]) -> dict[str, RuntimeOp]:
    """Profiled layer name -> runtime op. Names made by transformations carry process-wide counters
    ('VariadicSplit_8355') that differ between two compilations of the same model, so layers that
    find no op of the same name are aligned in execution order with the unmatched ops whose names
    are the same up to those numbers."""
    by_name = {op.name: op for op in runtime_ops}
    matched: dict[str, RuntimeOp] = {lt.name: by_name[lt.name] for lt in layers if lt.name in by_name}
    used = {op.name for op in matched.values()}
    sequence = sorted((op for op in runtime_ops if op.exec_order >= 0), key=lambda op: op.exec_order)
    position = {op.name: i for i, op in enumerate(sequence)}
    last = -1
    for lt in layers:
        if lt.name in matched:
            last = max(last, position.get(matched[lt.name].name, last))
            continue
        key = _GENERATED_ID.sub("_#", lt.name)
        for i in range(last + 1, len(sequence)):
            op = sequence[i]
            if op.name not in used and _GENERATED_ID.sub("_#", op.name) == key:
                matched[lt.name] = op
                used.add(op.name)
                last = i
                break
    return matched


def map_openvino(layers, original: OnnxGraph, runtime_ops: list[RuntimeOp]) -> Mapping:
    """Map OpenVINO's executed layers to ONNX nodes through their original layer names."""
    warnings: list[str] = []
    by_name = match_runtime_ops(layers, runtime_ops)
    timed = {op.name for op in by_name.values()}
    kernels: list[Kernel] = []
    unresolved: dict[str, list[str]] = {}
    for lt in layers:
        k = Kernel(lt.name, lt.op_type, float(lt.time_ms), extra=dict(lt.extra or {}))
        kernels.append(k)
        if lt.nodes:
            k.nodes, k.how = list(lt.nodes), "runtime"
            continue
        op = by_name.get(lt.name)
        if op is None:
            k.reason = "not-in-graph"
            continue
        nodes, missing = _resolve_all(original, op.original_names)
        k.nodes, k.how = nodes, "name"
        if missing:
            unresolved[k.name] = missing
            k.extra["unresolved_names"] = missing[:5]
    # Layers that did not run (in-place reshapes, ops fused into another layer) still say which
    # ONNX nodes they stand for: those nodes cost no kernel of their own.
    untimed: dict[str, list[str]] = {}
    for op in runtime_ops:
        if op.name in timed or op.layer_type in IO_KERNELS:
            continue
        nodes, _ = _resolve_all(original, op.original_names)
        if nodes:
            untimed[op.name] = nodes
    _claim(kernels, warnings)
    claimed = {n for k in kernels for n in k.nodes}
    untimed = {layer: [n for n in nodes if n not in claimed] for layer, nodes in untimed.items()}
    untimed = {layer: nodes for layer, nodes in untimed.items() if nodes}
    rename = {op.name: name for name, op in by_name.items()}  # the runtime graph in the profiled layers' names
    edges = {rename.get(op.name, op.name): [rename.get(i, i) for i in op.inputs] for op in runtime_ops}
    mapping = Mapping(kernels, "openvino: runtime-model originalLayersNames", untimed=untimed, warnings=warnings,
                      edges=edges, unresolved=unresolved)
    for k in kernels:
        if not k.nodes and k.reason is None:
            k.reason = _reason_for_type(k.kernel_type) or ("no-names" if k.name in by_name else "not-in-graph")
    return mapping


def _resolve_all(g: OnnxGraph, names: list[str]) -> tuple[list[str], list[str]]:
    nodes: list[str] = []
    missing: list[str] = []
    for name in names:
        node = g.resolve_name(name)
        if node is None:
            missing.append(name)
        elif node not in nodes:
            nodes.append(node)
    return nodes, missing


# --------------------------------------------------------------------------- structural completion
def complete(mapping: Mapping, g: OnnxGraph, counted: set[str]) -> None:
    """Place the counted ONNX nodes that no kernel claimed, using the graph around them.

    Uncovered nodes form connected regions (siblings reading one tensor together). A region goes to
    a name-less compute kernel lying between the kernels that feed it and those it feeds (the first
    executed, if several); otherwise to the closest kernel it feeds from (walking up through layers that did not run and layout
    reorders: post-op fusion), preferring one whose original names could not be resolved; else to
    the kernel it feeds.
    """
    owner = mapping.owner()
    uncovered = [n for n in g.nodes if n.name in counted and n.name not in owner]
    if not uncovered:
        return
    edges, unresolved = mapping.edges, mapping.unresolved
    kernels = {k.name: k for k in mapping.kernels}
    order = {k.name: i for i, k in enumerate(mapping.kernels)}
    consumers_of: dict[str, list[str]] = defaultdict(list)
    for dst, srcs in edges.items():
        for s in srcs:
            consumers_of[s].append(dst)
    nameless = {k.name for k in mapping.kernels
                if not k.nodes and k.reason in ("no-names", "no-nodes") and k.ms > 0}

    def mapped(name: str) -> bool:
        return name in kernels and bool(kernels[name].nodes)

    def between(up: set[str], down: set[str]) -> list[str]:
        """Name-less kernels reachable from `up` and reaching `down` without crossing mapped kernels."""
        found = []
        for n in nameless:
            ups = _ancestors(n, edges, mapped)
            downs = _ancestors(n, consumers_of, mapped)
            if (not up or ups & up) and (not down or downs & down) and (up or down):
                found.append(n)
        return sorted(found, key=lambda n: order[n])

    un = {n.name for n in uncovered}
    regions = _regions(g, un)
    counts: dict[str, int] = defaultdict(int)
    for region in regions:
        rset = set(region)
        up_layers = {owner[p] for n in region for i in g.by_name[n].input
                     if (p := g.producer.get(i)) and p not in rset and p in owner}
        down_layers = {owner[c] for n in region for o in g.by_name[n].output
                       for c in g.consumers.get(o, []) if c not in rset and c in owner}
        up = set().union(set(), *(_nearest(x, edges, mapped) for x in up_layers))
        down = set().union(set(), *(_nearest(x, consumers_of, mapped) for x in down_layers))
        target, how = None, ""
        candidates = between(up_layers | up, down_layers | down) if edges else []
        if candidates:
            target, how = candidates[0], "structure"
        else:
            # post-op fusion first: the closest kernel upstream; one that lost original names first
            for pool, how, closest in ((up, "fused-upstream", -1), (down, "fused-downstream", 0)):
                pick = [k for k in pool if k in unresolved] or list(pool)
                if pick:
                    target = sorted(pick, key=lambda k: order.get(k, 0))[closest]
                    break
        if target is None:
            continue
        k = kernels[target]
        k.nodes.extend(region)
        k.nodes.sort(key=lambda n: g.order[n])
        k.reason = None
        k.extra.setdefault("placed", {})
        k.extra["placed"][how] = k.extra["placed"].get(how, 0) + len(region)
        if not k.how:
            k.how = how
        counts[how] += len(region)
        for n in region:
            owner[n] = target
    if counts:
        mapping.warnings.append("ONNX nodes the runtime named no kernel for, placed by graph position: "
                                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def _nearest(layer: str, edges: dict[str, list[str]], mapped) -> set[str]:
    """`layer` itself when it is a mapped kernel, else the nearest mapped kernels along `edges`
    (through layers that did not run and layout reorders)."""
    return {layer} if mapped(layer) else _ancestors(layer, edges, mapped)


def _ancestors(start: str, edges: dict[str, list[str]], stop) -> set[str]:
    """Layers reachable from `start` along `edges`, stopping at (and including) mapped kernels."""
    out, frontier, seen = set(), list(edges.get(start, [])), {start}
    while frontier:
        x = frontier.pop()
        if x in seen:
            continue
        seen.add(x)
        if stop(x):
            out.add(x)
            continue
        frontier.extend(edges.get(x, []))
    return out


def _regions(g: OnnxGraph, names: set[str]) -> list[list[str]]:
    """Connected groups of `names` (through tensors between them), each in graph order."""
    parent = {n: n for n in names}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in names:
        for o in g.by_name[n].output:
            for c in g.consumers.get(o, []):
                if c in names:
                    parent[find(c)] = find(n)
    # siblings reading the same activation (the Slices a runtime turns into one Split) go together
    for t, readers in g.consumers.items():
        if t in g.initializers:
            continue
        inside = [c for c in readers if c in names]
        for c in inside[1:]:
            parent[find(c)] = find(inside[0])
    groups: dict[str, list[str]] = defaultdict(list)
    for n in names:
        groups[find(n)].append(n)
    regions = [sorted(v, key=lambda n: g.order[n]) for v in groups.values()]
    return sorted(regions, key=lambda r: g.order[r[0]])


# --------------------------------------------------------------------------- report
def _main_op(analysis_nodes: dict, nodes: list[str], fallback: str) -> str:
    """The op type a kernel is filed under: its node with the most FLOPs (then the most bytes)."""
    stats = [analysis_nodes[n] for n in nodes if n in analysis_nodes]
    if not stats:
        return fallback
    return max(stats, key=lambda s: (s.flops, s.bytes_read + s.bytes_written)).op_type


def build_report(mapping: Mapping, analysis, spec=None, precision: str | None = None,
                 timed_median_ms: float | None = None) -> dict[str, Any]:
    """The JSON-safe profile: per-kernel flops / bytes / bound, op types, unmapped time, coverage."""
    from effbench.analysis.graph import aggregate

    nodes_by_name = {s.name: s for s in analysis.nodes}
    counted = set(nodes_by_name)
    warnings = list(mapping.warnings)
    timed = [k for k in mapping.kernels if k.ms > 0 or k.nodes]
    groups = [[n for n in k.nodes if n in counted] for k in timed]

    mr = None
    if spec is not None:
        from effbench.analysis.roofline import model_roofline
        from effbench.errors import EffbenchError

        try:
            mr = model_roofline(analysis, spec, precision or analysis.precision,
                                measured_ms=sum(k.ms for k in timed) or None,
                                groups=[(grp, k.ms) for grp, k in zip(groups, timed)], roof="max")
        except EffbenchError as e:
            warnings.append(f"no roofline bounds: {e}")
        else:
            warnings.extend(w for w in mr.warnings if not w.startswith(("1 timed", "0 timed")))
    else:
        warnings.append("no peaks known for this device: no roofline bounds (add it to devices.yaml)")

    layers = []
    for i, (k, grp) in enumerate(zip(timed, groups)):
        if mr is not None:
            lr = mr.layers[i]
            flops, nbytes, bound_ms, bound = lr.flops, lr.bytes, lr.bound_ms, lr.bound
            if mr.bandwidth_bytes_per_s is None and flops == 0 and nbytes > 0:
                bound = "no bandwidth"
        else:
            st = aggregate(analysis, grp)
            flops, nbytes, bound_ms, bound = float(st.flops), float(st.bytes_read + st.bytes_written), None, None
        ops = "+".join(dict.fromkeys(nodes_by_name[n].op_type for n in grp)) or (
            "+".join(dict.fromkeys(n.split("/")[-1] for n in k.nodes)) if k.nodes else "")
        row = {
            "name": k.name,
            "kernel_type": k.kernel_type,
            "op_type": ops or k.kernel_type,
            "main_op_type": _main_op(nodes_by_name, grp, "(unmapped)" if not k.nodes else "(folded)"),
            "nodes": list(k.nodes),
            "mapped_by": k.how or None,
            "measured_ms": k.ms,
            "flops": flops,
            "bytes": nbytes,
            "intensity": flops / nbytes if nbytes else None,
            "bound_ms": bound_ms,
            "bound": bound,
            "excess_ms": k.ms - bound_ms if bound_ms is not None else None,
            "achieved_flops_per_s": flops / (k.ms / 1e3) if k.ms > 0 else None,
        }
        if not k.nodes:
            row["unmapped_reason"] = k.reason or "no-nodes"
        if grp != k.nodes:
            row["folded_nodes"] = len(k.nodes) - len(grp)
        for key in ("exec_type", "calls", "unresolved_names", "placed"):
            if key in k.extra:
                row[key] = k.extra[key]
        layers.append(row)

    # op-type table: measured time of kernels by their main ONNX op type, bound of the graph's
    # layers (kernels, plus the nodes no kernel ran) by the same op type
    table: dict[str, dict] = {}

    def row_for(op):
        return table.setdefault(op, {"op_type": op, "kernels": 0, "measured_ms": 0.0, "bound_ms": 0.0 if mr else None,
                                     "flops": 0.0})

    for row in layers:
        r = row_for(row["main_op_type"])
        r["kernels"] += 1
        r["measured_ms"] += row["measured_ms"]
        r["flops"] += row["flops"] or 0.0
        if mr is not None:
            r["bound_ms"] += row["bound_ms"] or 0.0
    if mr is not None:
        for lr in mr.layers[len(timed):]:  # graph nodes that no timed kernel covers
            r = row_for(lr.op_type)
            r["bound_ms"] += lr.bound_ms
            r["flops"] += lr.flops
    total_measured = sum(r["measured_ms"] for r in table.values())
    total_bound = sum(r["bound_ms"] for r in table.values()) if mr is not None else 0.0
    for r in table.values():
        r["share_of_measured"] = r["measured_ms"] / total_measured if total_measured else None
        r["share_of_bound"] = r["bound_ms"] / total_bound if mr is not None and total_bound else None
    op_types = sorted(table.values(), key=lambda r: (-r["measured_ms"], -(r["bound_ms"] or 0.0)))

    owner = mapping.owner()
    in_kernels = {n for k in timed for n in k.nodes if n in counted}
    in_untimed = {n for nodes in mapping.untimed.values() for n in nodes if n in counted} - in_kernels
    uncovered = [s.name for s in analysis.nodes if s.name not in owner]
    unmapped = [k for k in mapping.kernels if not k.nodes]
    reasons: dict[str, dict] = {}
    for k in unmapped:
        r = reasons.setdefault(k.reason or "no-nodes", {"kernels": 0, "ms": 0.0,
                                                       "means": UNMAPPED_REASONS.get(k.reason or "no-nodes", "")})
        r["kernels"] += 1
        r["ms"] += k.ms
    profiled_total = sum(k.ms for k in mapping.kernels)
    unmapped_ms = sum(k.ms for k in unmapped)
    mapped_flops = sum(nodes_by_name[n].flops for n in in_kernels)
    if uncovered:
        warnings.append(f"{len(uncovered)} counted ONNX node(s) covered by no kernel "
                        f"({sum(nodes_by_name[n].flops for n in uncovered)} FLOPs): "
                        + ", ".join(uncovered[:4]) + (" ..." if len(uncovered) > 4 else ""))
    report = {
        "method": mapping.method,
        "backend_layers": len(mapping.kernels),
        "layers": sorted(layers, key=lambda r: -r["measured_ms"]),
        "op_types": op_types,
        "profiled_total_ms": profiled_total,
        "timed_median_ms": timed_median_ms,
        "profiled_vs_timed": profiled_total / timed_median_ms if timed_median_ms else None,
        "unmapped_ms": unmapped_ms,
        "unmapped_share": unmapped_ms / profiled_total if profiled_total else None,
        "unmapped": [k.name for k in unmapped],
        "unmapped_reasons": reasons,
        "unmapped_kernels": [{"name": k.name, "kernel_type": k.kernel_type, "measured_ms": k.ms,
                              "reason": k.reason or "no-nodes"} for k in sorted(unmapped, key=lambda k: -k.ms)],
        "mapped_flops": mapped_flops,
        "graph_flops": analysis.flops,
        # layers the runtime lists without time (in place, fused, or under its counters' resolution)
        "untimed_layers": [{"name": layer, "nodes": nodes} for layer, nodes in mapping.untimed.items()],
        "coverage": {
            "graph_nodes": len(counted),
            "in_timed_kernels": len(in_kernels),
            "in_untimed_layers": len(in_untimed),
            "uncovered": len(uncovered),
            "uncovered_names": uncovered[:20],
            "uncovered_flops": sum(nodes_by_name[n].flops for n in uncovered),
            "folded_nodes": len(getattr(analysis, "folded_nodes", []) or []),
        },
        "roofline": None if mr is None else {
            "device_spec": spec.name, "precision": mr.precision, "peak_flops_per_s": mr.peak_flops_per_s,
            "bandwidth_bytes_per_s": mr.bandwidth_bytes_per_s, "roofline_ms": mr.roofline_ms,
            "peak_source": mr.peak_source, "bandwidth_source": mr.bandwidth_source,
        },
        "per_layer": True,
        "warnings": list(dict.fromkeys(warnings)),
    }
    return clean(report)


def build_torch_report(layers, analysis=None, spec=None, precision: str | None = None,
                       timed_median_ms: float | None = None) -> dict[str, Any]:
    """torch eager: aten ops aggregated by ONNX op type, compared with the graph's op-type bounds."""
    warnings = ["per-layer mapping is not available for torch eager (aten ops carry no ONNX node names): "
                "compared per op type only"]
    aten = [lt for lt in layers if lt.name.startswith("aten::")]
    kernels = [lt for lt in layers if not lt.name.startswith("aten::")]
    aten_ms, kernel_ms = sum(lt.time_ms for lt in aten), sum(lt.time_ms for lt in kernels)
    if aten and kernels and abs(aten_ms - kernel_ms) <= 0.05 * max(aten_ms, kernel_ms):
        # On CUDA the profiler gives each aten op the device time of the kernels it launched, and
        # lists those kernels too: the same time twice. The aten ops say which op type it was.
        layers = aten
        warnings.append(f"{len(kernels)} device kernel rows left out: they repeat the device time of the aten "
                        f"ops that launched them ({kernel_ms:.3g} ms)")
    rows = []
    for lt in layers:
        op = torch_op_type(lt.name) if lt.name.startswith("aten::") else None
        rows.append({"name": lt.name, "kernel_type": lt.op_type, "op_type": op or "(unmapped)", "nodes": [],
                     "measured_ms": float(lt.time_ms), "flops": None, "bytes": None, "intensity": None,
                     "bound_ms": None, "bound": None, "excess_ms": None, "achieved_flops_per_s": None,
                     "calls": (lt.extra or {}).get("calls")})
    bounds: dict[str, float] = {}
    flops: dict[str, float] = {}
    graph_flops = None
    if analysis is not None:
        graph_flops = analysis.flops
        for s in analysis.nodes:
            flops[s.op_type] = flops.get(s.op_type, 0.0) + s.flops
        if spec is not None:
            from effbench.analysis.roofline import model_roofline
            from effbench.errors import EffbenchError

            try:
                mr = model_roofline(analysis, spec, precision or analysis.precision, roof="max")
            except EffbenchError as e:
                warnings.append(f"no roofline bounds: {e}")
            else:
                for lr in mr.layers:
                    bounds[lr.op_type] = bounds.get(lr.op_type, 0.0) + lr.bound_ms
        else:
            warnings.append("no peaks known for this device: no roofline bounds (add it to devices.yaml)")
    table: dict[str, dict] = {}
    for r in rows:
        t = table.setdefault(r["op_type"], {"op_type": r["op_type"], "kernels": 0, "measured_ms": 0.0})
        t["kernels"] += 1
        t["measured_ms"] += r["measured_ms"]
    for op in set(bounds) | set(flops):
        table.setdefault(op, {"op_type": op, "kernels": 0, "measured_ms": 0.0})
    total_measured = sum(t["measured_ms"] for t in table.values())
    total_bound = sum(bounds.values())
    for t in table.values():
        t["bound_ms"] = bounds.get(t["op_type"]) if bounds else None
        t["flops"] = flops.get(t["op_type"])
        t["share_of_measured"] = t["measured_ms"] / total_measured if total_measured else None
        t["share_of_bound"] = (bounds.get(t["op_type"], 0.0) / total_bound) if total_bound else None
        if t["flops"] and t["measured_ms"] > 0:
            t["achieved_flops_per_s"] = t["flops"] / (t["measured_ms"] / 1e3)
    unmapped = [r for r in rows if r["op_type"] == "(unmapped)"]
    profiled_total = sum(r["measured_ms"] for r in rows)
    unmapped_ms = sum(r["measured_ms"] for r in unmapped)
    mapped_types = {r["op_type"] for r in rows} - {"(unmapped)"}
    return clean({
        "method": "torch: aten ops by op type (no per-layer mapping for eager)",
        "backend_layers": len(rows),
        "layers": sorted(rows, key=lambda r: -r["measured_ms"]),
        "op_types": sorted(table.values(), key=lambda t: (-t["measured_ms"], -(t["bound_ms"] or 0.0))),
        "profiled_total_ms": profiled_total,
        "timed_median_ms": timed_median_ms,
        "profiled_vs_timed": profiled_total / timed_median_ms if timed_median_ms else None,
        "unmapped_ms": unmapped_ms,
        "unmapped_share": unmapped_ms / profiled_total if profiled_total else None,
        "unmapped": [r["name"] for r in unmapped],
        "unmapped_reasons": {"torch-op": {"kernels": len(unmapped), "ms": unmapped_ms,
                                          "means": UNMAPPED_REASONS["torch-op"]}} if unmapped else {},
        "unmapped_kernels": [{"name": r["name"], "kernel_type": r["kernel_type"], "measured_ms": r["measured_ms"],
                              "reason": "torch-op"} for r in unmapped],
        "mapped_flops": sum(flops.get(op, 0.0) for op in mapped_types) if analysis is not None else None,
        "graph_flops": graph_flops,
        "coverage": None,
        "roofline": None,
        "per_layer": False,
        "warnings": warnings,
    })


def clean(value: Any) -> Any:
    """JSON-safe: no inf / NaN, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- entry points
def map_layers(backend: str, layers, onnx_path, analysis=None, cfg=None, artifact=None,
               input_shape=None) -> Mapping:
    """The mapping of `layers` (a backend's profile) onto the ONNX graph at `onnx_path`."""
    g = OnnxGraph.load(onnx_path)
    counted = {s.name for s in analysis.nodes} if analysis is not None else {n.name for n in g.nodes}
    folded = set(getattr(analysis, "folded_nodes", []) or []) if analysis is not None else set()
    if any(lt.nodes for lt in layers):  # the runtime says itself
        kernels = [Kernel(lt.name, lt.op_type, float(lt.time_ms), list(lt.nodes), "runtime",
                          extra=dict(lt.extra or {})) for lt in layers]
        mapping = Mapping(kernels, f"{backend}: node names reported by the runtime")
        _claim(kernels, mapping.warnings)
        for k in kernels:
            if not k.nodes:
                k.reason = _reason_for_type(k.kernel_type) or "no-nodes"
    elif backend == "onnxruntime":
        import onnx

        with tempfile.TemporaryDirectory(prefix="effbench-ort-opt-") as tmp:
            try:
                path = ort_optimized_graph(onnx_path, cfg, tmp)
                opt = onnx.load(str(path), load_external_data=False)
            except Exception as e:  # a graph the runtime cannot save: map by identical names only
                opt = None
                reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if opt is None:
            mapping = _by_name(backend, layers, g)
            mapping.warnings.append(f"ONNX Runtime could not save its optimized graph ({reason}): "
                                    "kernels mapped by identical node names only")
        else:
            mapping = map_onnxruntime(layers, g, opt, folded)
    elif backend == "openvino":
        xml = getattr(artifact, "path", None)
        try:
            ops = openvino_runtime_ops(xml, cfg, input_shape)
        except Exception as e:
            mapping = _by_name(backend, layers, g)
            mapping.warnings.append(f"OpenVINO runtime model unavailable ({str(e).splitlines()[0][:200]}): "
                                    "layers mapped by their own names only")
        else:
            mapping = map_openvino(layers, g, ops)
    else:
        mapping = _by_name(backend, layers, g)
    complete(mapping, g, counted)
    return mapping


def _by_name(backend: str, layers, g: OnnxGraph) -> Mapping:
    kernels = []
    for lt in layers:
        node = g.resolve_name(lt.name)
        k = Kernel(lt.name, lt.op_type, float(lt.time_ms), [node] if node else [], "name" if node else "",
                   extra=dict(lt.extra or {}))
        if node is None:
            k.reason = _reason_for_type(lt.op_type) or "not-in-graph"
        kernels.append(k)
    mapping = Mapping(kernels, f"{backend}: kernel names matched to ONNX node names")
    _claim(kernels, mapping.warnings)
    return mapping


def attach_profile(result, cfg, artifact, layers, src, target) -> None:
    """Put the mapped per-layer profile of a profiled cell into result.extra['profile']."""
    result.scenario = "profile"
    median = (result.latency_ms or {}).get("median")
    if not layers:
        result.extra["profile"] = {"available": False,
                                   "reason": f"the {result.backend} backend reported no per-layer times"}
        result.warnings.append(f"no per-layer profile: the {result.backend} backend reports none")
        return
    from effbench.analysis.summary import analysis_for, onnx_path_of
    from effbench.errors import EffbenchError

    iters = int(cfg.options.get("profile_iters", 20))
    layers, note = per_inference(layers, iters, result.backend)
    precision = result.precision_ran or cfg.precision
    spec = target.spec if target is not None else None
    analysis = None
    try:
        path = onnx_path_of(artifact, cfg, src)
        if path is not None:
            analysis = analysis_for(path, precision)
    except EffbenchError as e:
        result.warnings.append(f"profile without graph analysis: {e}")
        path = None
    if result.backend == "torch" or path is None or analysis is None:
        report = build_torch_report(layers, analysis, spec, precision, median) if result.backend == "torch" else \
            _unmapped_only(layers, median)
    else:
        input_shape = (cfg.batch_size, *src.spec.input_shape) if src is not None else None
        mapping = map_layers(result.backend, layers, path, analysis, cfg, artifact, input_shape)
        report = build_report(mapping, analysis, spec, precision, median)
    report["iterations"] = iters
    if note:
        report["warnings"].insert(0, note)
    result.extra["profile"] = report


def per_inference(layers, iters: int, backend: str):
    """ONNX Runtime's profiler records every run of the session, warm-up and timed runs included,
    while the backend divides by the profiled iterations only: rescale to a mean per run, taking
    the most common per-kernel call count as the number of runs (most kernels run once per
    inference)."""
    if backend != "onnxruntime":
        return layers, None
    counts = [int((lt.extra or {}).get("calls", 0)) for lt in layers]
    counts = [c for c in counts if c > 0]
    if not counts:
        return layers, None
    runs = max(set(counts), key=counts.count)
    if runs <= iters:
        return layers, None
    from effbench.backends.base import LayerTime

    scale = iters / runs
    out = [LayerTime(lt.name, lt.op_type, lt.time_ms * scale, list(lt.nodes), dict(lt.extra or {}))
           for lt in layers]
    return out, (f"the runtime's profiler recorded {runs} runs (warm-up and timed runs as well as the "
                 f"{iters} profiled ones): per-layer times are means over all {runs}")


def _unmapped_only(layers, median) -> dict:
    total = sum(float(lt.time_ms) for lt in layers)
    rows = [{"name": lt.name, "kernel_type": lt.op_type, "op_type": lt.op_type, "nodes": [],
             "measured_ms": float(lt.time_ms)} for lt in layers]
    return clean({"method": "no ONNX graph: kernels listed as the runtime named them", "backend_layers": len(rows),
                  "layers": sorted(rows, key=lambda r: -r["measured_ms"]), "op_types": [],
                  "profiled_total_ms": total, "timed_median_ms": median,
                  "profiled_vs_timed": total / median if median else None, "unmapped_ms": total,
                  "unmapped": [r["name"] for r in rows], "mapped_flops": None, "graph_flops": None,
                  "per_layer": False, "warnings": ["no ONNX graph behind this artifact: nothing to map onto"]})
