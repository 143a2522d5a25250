"""ONNX Runtime's per-layer mapping: kernels are named after nodes of the *optimized* graph (the
session that ran saves it); each optimized node is mapped by walking back from its outputs through
the original graph's producers until reaching its inputs, constants, graph inputs or a tensor
another kernel produces. Tensors of the NCHWc layout (ReorderInput / ReorderOutput) are traced to
the original tensors they carry."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from effbench.backends.profiling import LAYOUT_KERNELS, Kernel, Mapping, OnnxGraph, _claim, _reason_for_type


@dataclass
class OptimizedNode:
    name: str
    op_type: str
    input: list[str]
    output: list[str]


def map_onnxruntime(layers, original: OnnxGraph, optimized: dict[str, Any]) -> Mapping:
    """Map ORT kernels (named after optimized-graph nodes) to the original graph's nodes.
    `optimized`: the optimized graph (`optimized_graph`)."""
    warnings: list[str] = []
    folded = original.folded
    nodes = [OptimizedNode(n["name"], n["op_type"], list(n["input"]), list(n["output"])) for n in optimized["nodes"]]
    opt_nodes = {n.name: n for n in nodes}
    opt_producer: dict[str, Any] = {}
    opt_consumers: dict[str, list] = defaultdict(list)
    for n in nodes:
        for t in n.output:
            opt_producer[t] = n
        for t in n.input:
            if t:
                opt_consumers[t].append(n)
    opt_initializers = set(optimized.get("initializers") or [])
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
                    if o not in original.tensors and not any(
                        c.op_type in LAYOUT_KERNELS for c in opt_consumers.get(o, [])
                    ):
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
    for node in nodes:
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
    return Mapping(kernels, "onnxruntime: optimized graph walked back to the original", warnings=warnings, edges=edges)


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


_FUSABLE_POST_OPS = set(
    "Add Sum Mul Sub Div Relu LeakyRelu Clip Sigmoid HardSigmoid HardSwish Tanh Gelu Swish BatchNormalization".split()
)
