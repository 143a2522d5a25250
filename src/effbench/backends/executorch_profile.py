"""ExecuTorch's per-kernel mapping onto the ONNX graph, through the edge graph the ETRecord describes.

Kernel -> edge op: a portable kernel names its op by debug handle; an XNNPACK kernel only names its
delegate call, so the call's kernels are aligned with the partition's ops in order, a kernel with an op
of its kind (the longest common subsequence: the layout transposes XNNPACK adds match no op).
Edge op -> ONNX node: both name the module they were called in (the edge op its nn.Module path, the
TorchScript exporter its scope: `/stages/stages.0/blocks/...`), and within a module the ops of one
type come in the same order. Edge ops with no kernel of their own (a BatchNorm folded into its
convolution, a ReLU fused as its output clamp) leave their ONNX nodes to the structural completion
(backends.profiling.complete)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from effbench.backends.profiling import Kernel, Mapping, OnnxGraph, _claim

# XNNPACK kernel name (its prefix) -> edge op tokens it runs; first match wins
KERNEL_KINDS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("Convolution", (("convolution",),)),
    ("Deconvolution", (("convolution",),)),
    ("Fully Connected", (("linear",), ("addmm",), ("mm",), ("convolution",))),  # a 1x1 convolution too
    ("Batch Matrix Multiply", (("bmm",), ("matmul",))),
    ("Add", (("add",),)),
    ("Subtract", (("sub",),)),
    ("Multiply", (("mul",),)),
    ("Divide", (("div",),)),
    ("Transpose", (("permute",),)),
    ("Constant Pad", (("constant", "pad"),)),
    ("Softmax", (("softmax",),)),
    ("Sigmoid", (("sigmoid",),)),
    ("HardSwish", (("hardswish",),)),
    ("Clamp", (("relu",), ("hardtanh",), ("clamp",))),
    ("Mean", (("mean",),)),
    ("Global Average Pooling", (("mean",), ("avg", "pool2d"))),
    ("Average Pooling", (("avg", "pool2d"),)),
    ("Max Pooling", (("max", "pool2d"),)),
    ("Concatenate", (("cat",),)),
    ("Static Reshape", (("view",),)),
    ("Copy", (("clone",), ("view",))),
    ("Slice", (("slice",),)),
    ("Convert", (("quantize",), ("dequantize",))),
)

# edge op tokens -> the ONNX op types the TorchScript exporter makes of it; first match wins
ONNX_TYPES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("convolution",), ("Conv", "ConvTranspose")),
    (("linear",), ("Gemm", "MatMul")),
    (("addmm",), ("Gemm",)),
    (("bmm",), ("MatMul",)),
    (("mm",), ("MatMul", "Gemm")),
    (("batch", "norm"), ("BatchNormalization",)),
    (("constant", "pad"), ("Pad",)),
    (("max", "pool2d"), ("MaxPool",)),
    (("avg", "pool2d"), ("AveragePool", "GlobalAveragePool")),
    (("add",), ("Add",)),
    (("sub",), ("Sub",)),
    (("mul",), ("Mul",)),
    (("div",), ("Div",)),
    (("permute",), ("Transpose",)),
    (("softmax",), ("Softmax",)),
    (("sigmoid",), ("Sigmoid",)),
    (("relu",), ("Relu",)),
    (("hardtanh",), ("Clip",)),
    (("clamp",), ("Clip",)),
    (("hardswish",), ("HardSwish",)),
    (("gelu",), ("Gelu",)),
    (("mean",), ("ReduceMean", "GlobalAveragePool")),
    (("cat",), ("Concat",)),
    (("view",), ("Reshape", "Flatten")),
    (("index",), ("Gather",)),
    (("select",), ("Gather",)),
    (("split",), ("Split",)),
    (("slice",), ("Slice",)),
    (("expand",), ("Expand",)),
)


def _matches(op: str, wanted: tuple[tuple[str, ...], ...]) -> bool:
    tokens = set(op.split("_"))
    return any(all(t in tokens for t in req) for req in wanted)


def _kind(kernel_type: str) -> tuple[tuple[str, ...], ...] | None:
    return next((ops for prefix, ops in KERNEL_KINDS if kernel_type.startswith(prefix)), None)


def onnx_module(node_name: str) -> str | None:
    """'/stages/stages.0/blocks/blocks.0/dw0/m/conv/Conv' -> 'stages.0.blocks.0.dw0.m.conv' (the module
    path torch.export records); None for a node outside any scope."""
    if not node_name.startswith("/"):
        return None
    parts: list[str] = []
    for c in node_name.strip("/").split("/")[:-1]:
        if parts and c.startswith(parts[-1] + "."):  # 'stages', 'stages.0': a container's child
            parts[-1] = c
        else:
            parts.append(c)
    return ".".join(parts)


def onnx_nodes_of(graph: OnnxGraph, edge_ops: list[dict[str, Any]]) -> dict[str, str]:
    """Edge op name -> ONNX node: the next unused node of the op's ONNX types in the same module."""
    by_module: dict[str, list[Any]] = defaultdict(list)
    for n in graph.nodes:
        module = onnx_module(n.name)
        if module is not None:
            by_module[module].append(n)
    used: set[str] = set()
    out: dict[str, str] = {}
    for op in edge_ops:
        types = next((t for req, t in ONNX_TYPES if _matches(op["op"], (req,))), None)
        if not types or op["name"] in out:
            continue
        node = next((n for n in by_module.get(op["module"], []) if n.op_type in types and n.name not in used), None)
        if node is not None:
            used.add(node.name)
            out[op["name"]] = node.name
    return out


def _align(kernels: list[Kernel], ops: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Kernel name -> edge op: the longest common subsequence of the call's kernels and its partition's
    ops, where a kernel matches an op of its kind."""
    kinds = [_kind(k.kernel_type) for k in kernels]
    fits = [[kind is not None and _matches(op["op"], kind) for op in ops] for kind in kinds]
    n, m = len(kernels), len(ops)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + 1 if fits[i][j] else 0)
    out: dict[str, dict[str, Any]] = {}
    i = j = 0
    while i < n and j < m:
        if fits[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            out[kernels[i].name] = ops[j]
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def _why_unmapped(k: Kernel, op: dict[str, Any] | None, group: list[dict[str, Any]]) -> str:
    if op is None:
        return "layout" if k.kernel_type.startswith(("Transpose", "Convert", "Copy")) else "not-in-graph"
    return "decomposed" if len(group) > 1 else "no-nodes"


def map_executorch(layers, graph: OnnxGraph, edge_ops: list[dict[str, Any]] | None) -> Mapping:
    edge_ops = edge_ops or []
    to_onnx = onnx_nodes_of(graph, edge_ops)
    by_handle: dict[Any, list[dict[str, Any]]] = defaultdict(list)  # a decomposed op's parts share its handle
    partitions: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in edge_ops:
        if e["partition"] is not None:
            partitions[e["partition"]].append(e)
        elif e not in by_handle[e["handle"]]:
            by_handle[e["handle"]].append(e)
    kernels = [Kernel(lt.name, lt.op_type, float(lt.time_ms), extra=dict(lt.extra or {})) for lt in layers]
    in_partition: dict[Any, list[Kernel]] = defaultdict(list)
    for k in kernels:
        if "partition" in k.extra and k.kernel_type != "DelegateCall":
            in_partition[k.extra["partition"]].append(k)
    aligned: dict[str, dict[str, Any]] = {}
    for part, ks in in_partition.items():
        aligned.update(_align(ks, partitions.get(part, [])))
    for k in kernels:
        if k.kernel_type == "DelegateCall":
            k.reason = "delegate-call"
            continue
        op: dict[str, Any] | None
        if "handle" in k.extra:
            group = by_handle.get(k.extra["handle"], [])
            own = k.kernel_type.replace(".", "_")
            op = next((o for o in group if o["op"] == own), group[0] if group else None)
            k.how = "debug-handle"
        else:
            op, k.how = aligned.get(k.name), "partition-order"
        if op is not None:
            k.extra["edge_op"] = op["name"]
            node = to_onnx.get(op["name"])  # None: a part of a decomposed op (matmul's expand) with no ONNX node
            k.nodes = [node] if node else []
        if not k.nodes:
            k.how, k.reason = "", _why_unmapped(k, op, by_handle.get(k.extra.get("handle"), []))
    warnings: list[str] = []
    if not edge_ops:
        warnings.append("no ETRecord beside the .pte: ExecuTorch's kernels could not be placed in the graph")
    _claim(kernels, warnings)
    return Mapping(
        kernels, "executorch: ETRecord edge ops by debug handle / partition order, module path", warnings=warnings
    )
