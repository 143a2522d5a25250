"""OpenVINO's per-layer mapping: each executed layer of the performance counters is the runtime-model
op of the same friendly name; its rt_info `originalLayersNames` lists the OV-model names it fused,
which the ONNX frontend made from ONNX node names (or output tensor names, or "<node>/<suffix>" for
the parts of a decomposed node). The runtime model comes from the session that was profiled."""

from __future__ import annotations

import re
from dataclasses import dataclass

from effbench.backends.profiling import IO_KERNELS, Kernel, Mapping, OnnxGraph, _claim, _reason_for_type, resolve_all


# --------------------------------------------------------------------------- OpenVINO
@dataclass
class RuntimeOp:
    """One op of OpenVINO's runtime (execution) model."""

    name: str
    layer_type: str
    original_names: list[str]
    inputs: list[str]  # friendly names of the ops feeding it
    exec_order: int = -1


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
        nodes, missing = resolve_all(original, op.original_names)
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
        nodes, _ = resolve_all(original, op.original_names)
        if nodes:
            untimed[op.name] = nodes
    _claim(kernels, warnings)
    claimed = {n for k in kernels for n in k.nodes}
    untimed = {layer: [n for n in nodes if n not in claimed] for layer, nodes in untimed.items()}
    untimed = {layer: nodes for layer, nodes in untimed.items() if nodes}
    rename = {op.name: name for name, op in by_name.items()}  # the runtime graph in the profiled layers' names
    edges = {rename.get(op.name, op.name): [rename.get(i, i) for i in op.inputs] for op in runtime_ops}
    mapping = Mapping(
        kernels,
        "openvino: runtime-model originalLayersNames",
        untimed=untimed,
        warnings=warnings,
        edges=edges,
        unresolved=unresolved,
    )
    for k in kernels:
        if not k.nodes and k.reason is None:
            k.reason = _reason_for_type(k.kernel_type) or ("no-names" if k.name in by_name else "not-in-graph")
    return mapping
