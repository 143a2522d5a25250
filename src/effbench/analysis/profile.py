"""Per-layer profiles mapped through fused kernels back to the ONNX graph.

A runtime rarely executes the ONNX graph node by node: it fuses Conv + BatchNorm + Relu into one
kernel, folds shape arithmetic away, inserts layout reorders. To put a roofline bound next to a
measured kernel, each kernel is mapped back to the group of ONNX nodes it covers; the group's FLOPs
are its nodes' sum and its bytes its external inputs, outputs and weights (`graph.aggregate`).

How a runtime's kernels map to ONNX nodes is that backend's own hook (`Backend.map_profile`, in
backends/*_profile.py, over the structures of backends/profiling.py); this module turns a mapping
into the report: per kernel its ONNX nodes, FLOPs, bytes, roofline bound and measured time.

Kernels that cover no ONNX node (layout reorders, memory copies, inputs/outputs) are reported as
unmapped time with a reason, never hidden. A node claimed by two kernels goes to the first one
executed, with a warning.
"""

from __future__ import annotations

import math
from typing import Any

from effbench.backends.profiling import UNMAPPED_REASONS, Mapping, OnnxGraph, complete, map_reported
from effbench.core.session import LayerTime


# --------------------------------------------------------------------------- report
def _main_op(analysis_nodes: dict, nodes: list[str], fallback: str) -> str:
    """The op type a kernel is filed under: its node with the most FLOPs (then the most bytes)."""
    stats = [analysis_nodes[n] for n in nodes if n in analysis_nodes]
    if not stats:
        return fallback
    return max(stats, key=lambda s: (s.flops, s.bytes_read + s.bytes_written)).op_type


def build_report(
    mapping: Mapping, analysis, spec=None, precision: str | None = None, timed_median_ms: float | None = None
) -> dict[str, Any]:
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
            mr = model_roofline(
                analysis,
                spec,
                precision or analysis.precision,
                measured_ms=sum(k.ms for k in timed) or None,
                groups=[(grp, k.ms) for grp, k in zip(groups, timed)],
                roof="max",
            )
        except EffbenchError as e:
            warnings.append(f"no roofline bounds: {e}")
        else:
            warnings.extend(w for w in mr.warnings if not w.startswith(("1 timed", "0 timed")))
    else:
        warnings.append("no peaks known for this device: no roofline bounds (add it to devices.yaml)")

    layers: list[dict[str, Any]] = []
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
            "+".join(dict.fromkeys(n.split("/")[-1] for n in k.nodes)) if k.nodes else ""
        )
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
        return table.setdefault(
            op, {"op_type": op, "kernels": 0, "measured_ms": 0.0, "bound_ms": 0.0 if mr else None, "flops": 0.0}
        )

    for row in layers:
        r = row_for(row["main_op_type"])
        r["kernels"] += 1
        r["measured_ms"] += row["measured_ms"]
        r["flops"] += row["flops"] or 0.0
        if mr is not None:
            r["bound_ms"] += row["bound_ms"] or 0.0
    if mr is not None:
        for lr in mr.layers[len(timed) :]:  # graph nodes that no timed kernel covers
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
        r = reasons.setdefault(
            k.reason or "no-nodes", {"kernels": 0, "ms": 0.0, "means": UNMAPPED_REASONS.get(k.reason or "no-nodes", "")}
        )
        r["kernels"] += 1
        r["ms"] += k.ms
    profiled_total = sum(k.ms for k in mapping.kernels)
    unmapped_ms = sum(k.ms for k in unmapped)
    mapped_flops = sum(nodes_by_name[n].flops for n in in_kernels)
    if uncovered:
        warnings.append(
            f"{len(uncovered)} counted ONNX node(s) covered by no kernel "
            f"({sum(nodes_by_name[n].flops for n in uncovered)} FLOPs): "
            + ", ".join(uncovered[:4])
            + (" ..." if len(uncovered) > 4 else "")
        )
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
        "unmapped_kernels": [
            {"name": k.name, "kernel_type": k.kernel_type, "measured_ms": k.ms, "reason": k.reason or "no-nodes"}
            for k in sorted(unmapped, key=lambda k: -k.ms)
        ],
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
        "roofline": None
        if mr is None
        else {
            "device_spec": spec.name,
            "precision": mr.precision,
            "peak_flops_per_s": mr.peak_flops_per_s,
            "bandwidth_bytes_per_s": mr.bandwidth_bytes_per_s,
            "roofline_ms": mr.roofline_ms,
            "peak_source": mr.peak_source,
            "bandwidth_source": mr.bandwidth_source,
        },
        "per_layer": True,
        "warnings": list(dict.fromkeys(warnings)),
    }
    return clean(report)


def build_op_type_report(
    layers, backend, analysis=None, spec=None, precision: str | None = None, timed_median_ms: float | None = None
) -> dict[str, Any]:
    """A backend whose kernels carry no ONNX node names (torch eager): its ops aggregated by the ONNX op
    type they stand for (`backend.kernel_op_type`), compared with the graph's op-type bounds."""
    warnings = [
        f"per-layer mapping is not available for {backend.name} (its ops carry no ONNX node names): "
        "compared per op type only"
    ]
    aten = [lt for lt in layers if lt.name.startswith("aten::")]
    kernels = [lt for lt in layers if not lt.name.startswith("aten::")]
    aten_ms, kernel_ms = sum(lt.time_ms for lt in aten), sum(lt.time_ms for lt in kernels)
    if aten and kernels and abs(aten_ms - kernel_ms) <= 0.05 * max(aten_ms, kernel_ms):
        # On CUDA the profiler gives each aten op the device time of the kernels it launched, and
        # lists those kernels too: the same time twice. The aten ops say which op type it was.
        layers = aten
        warnings.append(
            f"{len(kernels)} device kernel rows left out: they repeat the device time of the aten "
            f"ops that launched them ({kernel_ms:.3g} ms)"
        )
    rows = []
    for lt in layers:
        op = backend.kernel_op_type(lt.name)
        rows.append(
            {
                "name": lt.name,
                "kernel_type": lt.op_type,
                "op_type": op or "(unmapped)",
                "nodes": [],
                "measured_ms": float(lt.time_ms),
                "flops": None,
                "bytes": None,
                "intensity": None,
                "bound_ms": None,
                "bound": None,
                "excess_ms": None,
                "achieved_flops_per_s": None,
                "calls": (lt.extra or {}).get("calls"),
            }
        )
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
    return clean(
        {
            "method": f"{backend.name}: ops by op type (no per-layer mapping)",
            "backend_layers": len(rows),
            "layers": sorted(rows, key=lambda r: -r["measured_ms"]),
            "op_types": sorted(table.values(), key=lambda t: (-t["measured_ms"], -(t["bound_ms"] or 0.0))),
            "profiled_total_ms": profiled_total,
            "timed_median_ms": timed_median_ms,
            "profiled_vs_timed": profiled_total / timed_median_ms if timed_median_ms else None,
            "unmapped_ms": unmapped_ms,
            "unmapped_share": unmapped_ms / profiled_total if profiled_total else None,
            "unmapped": [r["name"] for r in unmapped],
            "unmapped_reasons": {
                "torch-op": {"kernels": len(unmapped), "ms": unmapped_ms, "means": UNMAPPED_REASONS["torch-op"]}
            }
            if unmapped
            else {},
            "unmapped_kernels": [
                {
                    "name": r["name"],
                    "kernel_type": r["kernel_type"],
                    "measured_ms": r["measured_ms"],
                    "reason": "torch-op",
                }
                for r in unmapped
            ],
            "mapped_flops": sum(flops.get(op, 0.0) for op in mapped_types) if analysis is not None else None,
            "graph_flops": graph_flops,
            "coverage": None,
            "roofline": None,
            "per_layer": False,
            "warnings": warnings,
        }
    )


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


def map_layers(backend, layers, onnx_path, analysis=None, runtime_graph=None):
    """The mapping of `layers` (a backend's profile) onto the ONNX graph at `onnx_path`, through the
    backend's own hook (None: the backend has no per-layer mapping), completed structurally."""
    g = OnnxGraph.load(onnx_path)
    counted = {s.name for s in analysis.nodes} if analysis is not None else {n.name for n in g.nodes}
    g.folded = set(getattr(analysis, "folded_nodes", []) or []) if analysis is not None else set()
    if any(lt.nodes for lt in layers):  # the runtime says itself
        mapping = map_reported(backend.name, layers)
    else:
        mapping = backend.map_profile(layers, g, runtime_graph)
        if mapping is None:
            return None
    complete(mapping, g, counted)
    return mapping


def profile_report(prepared, measured, analysis, median_ms: float | None) -> tuple[dict[str, Any], list[str]]:
    """(extra["profile"] of a profiled cell, warnings for the result)."""
    from effbench.backends.registry import get_backend

    backend = get_backend(prepared.backend)
    raw = measured.profile_layers
    if not raw:
        why = f"the {backend.name} backend reported no per-layer times"
        return {"available": False, "reason": why}, [f"no per-layer profile: {why}"]
    layers = [LayerTime(**lt) for lt in raw]
    precision = measured.precision_ran or prepared.cfg.precision
    spec = prepared.target.spec if prepared.target is not None else None
    mapping = None
    if prepared.analysis_onnx and not backend.maps_by_op_type:
        mapping = map_layers(backend, layers, prepared.analysis_onnx, analysis, measured.runtime_graph)
    if mapping is not None:
        report = build_report(mapping, analysis, spec, precision, median_ms)
    elif backend.maps_by_op_type:
        report = build_op_type_report(layers, backend, analysis, spec, precision, median_ms)
    else:
        report = _unmapped_only(layers, median_ms)
    report["iterations"] = prepared.cfg.profile_iters
    note = measured.runtime_info.get("profile_note")
    if note:
        report["warnings"].insert(0, note)
    return report, []


def _unmapped_only(layers, median) -> dict:
    total = sum(float(lt.time_ms) for lt in layers)
    rows = [
        {
            "name": lt.name,
            "kernel_type": lt.op_type,
            "op_type": lt.op_type,
            "nodes": [],
            "measured_ms": float(lt.time_ms),
        }
        for lt in layers
    ]
    return clean(
        {
            "method": "no ONNX graph: kernels listed as the runtime named them",
            "backend_layers": len(rows),
            "layers": sorted(rows, key=lambda r: -r["measured_ms"]),
            "op_types": [],
            "profiled_total_ms": total,
            "timed_median_ms": median,
            "profiled_vs_timed": total / median if median else None,
            "unmapped_ms": total,
            "unmapped": [r["name"] for r in rows],
            "mapped_flops": None,
            "graph_flops": None,
            "per_layer": False,
            "warnings": ["no ONNX graph behind this artifact: nothing to map onto"],
        }
    )
