"""What of a quantised model ran in int8, read back from what the runtime executes, and the share of the
graph's MACs that did.

- ONNX Runtime: the graph ORT optimises with effbench's session options; a QDQ node is int8 when ORT
  fused DequantizeLinear -> op -> QuantizeLinear into QLinearConv, QGemm, QLinearMatMul, ...
- OpenVINO: runtime-graph convolutions and matrix products whose data input arrives as u8/i8.
- The MAC share maps those names onto the ONNX graph analysis (`analysis.graph.analyze`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable

COMPUTE_LAYERS = ("Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm")
INT8_PRECISIONS = ("u8", "i8", "int8", "uint8")


def int8_layers_openvino(runtime_graph: list[dict[str, Any]] | None) -> list[str]:
    """Original (IR) names of the compute layers OpenVINO ran in int8, from `Session.runtime_graph()`.

    A layer ran int8 when its runtime precision says so (a `runtime_precision` key, which the core session
    does not fill yet) or when its data input (the first) arrives as u8/i8: a quantised FullyConnected's
    *output* precision is f32 when nothing after it is quantised."""
    if not runtime_graph:
        return []
    out_prec = {op["name"]: str(op.get("precision") or "").split(",")[0].strip().lower() for op in runtime_graph}
    names: list[str] = []
    for op in runtime_graph:
        if op.get("layer_type") not in COMPUTE_LAYERS:
            continue
        own = str(op.get("runtime_precision") or "").lower()
        first = op.get("inputs") or []
        src = out_prec.get(first[0], "") if first else ""
        if own in INT8_PRECISIONS or src in INT8_PRECISIONS:
            names.extend(op.get("original_names") or [op["name"]])
    return names


def int8_nodes_onnxruntime(quantized_onnx: str | Path, threads: int | None = None) -> list[str]:
    """Nodes of a QDQ file that ONNX Runtime runs as int8 kernels: it fuses DequantizeLinear -> op ->
    QuantizeLinear into QLinearConv, QGemm, ... when it can, and runs the op in fp32 between the pairs
    when it cannot. Read from the graph ORT optimises with the session options every effbench session uses."""
    import onnx
    import onnxruntime as ort

    from effbench.core.runtimes.onnxruntime import fused_int8, session_options

    qdq = [n.name for n in onnx.load(str(quantized_onnx), load_external_data=False).graph.node]
    with tempfile.TemporaryDirectory(prefix="effbench-ortopt-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        ort.InferenceSession(
            str(quantized_onnx), session_options(threads, None, str(optimized)), providers=["CPUExecutionProvider"]
        )
        return sorted(fused_int8(str(optimized), qdq))


def int8_macs_share(
    onnx_path: str | Path, names: Iterable[str], input_shapes: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """The share of the graph's MACs in nodes that ran int8.

    `names`: runtime names (ONNX node names, their output tensors, or names derived from them such as
    OpenVINO's '/0/Conv/WithoutBiases'): each is matched to an ONNX node with MACs by exact name, output
    tensor, or its longest '/'-prefix that is a node name."""
    from effbench.analysis.graph import analyze

    analysis = analyze(str(onnx_path), input_shapes=input_shapes)
    compute = {s.name: s for s in analysis.nodes if s.macs > 0}
    by_output = {o: s.name for s in compute.values() for o in s.outputs}
    hit: set[str] = set()
    for name in names:
        cand = name
        while cand:
            if cand in compute:
                hit.add(cand)
                break
            if cand in by_output:
                hit.add(by_output[cand])
                break
            cand = cand.rsplit("/", 1)[0] if "/" in cand.strip("/") else ""
    int8 = sum(compute[n].macs for n in hit)
    total = sum(s.macs for s in compute.values())
    return {
        "int8_macs_share": round(int8 / total, 4) if total else None,
        "int8_macs": int8,
        "macs": total,
        "int8_nodes": len(hit),
        "compute_nodes": len(compute),
        "fp32_nodes": sorted(set(compute) - hit)[:50],
    }


def coverage_openvino(
    artifact_path: str, onnx_path: str, after: dict[str, Any], threads: int | None = None
) -> dict[str, Any]:
    """The openvino backend's int8 coverage: runtime-graph layers that ran int8, on the fp32 ONNX graph."""
    return int8_macs_share(onnx_path, int8_layers_openvino(after.get("runtime_graph") or []))


def coverage_onnxruntime(
    artifact_path: str, onnx_path: str, after: dict[str, Any], threads: int | None = None
) -> dict[str, Any]:
    """The onnxruntime backend's int8 coverage: the QDQ nodes ORT fused into int8 kernels."""
    return int8_macs_share(artifact_path, int8_nodes_onnxruntime(artifact_path, threads))
