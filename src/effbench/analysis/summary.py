"""The graph analysis of an artifact (cached beside it) and what it adds to a measured result: MACs,
ideal and roofline latency, computational efficiency (Lavin 2024) and the efficiency gap, with the
layers that hold it back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from effbench.errors import EffbenchError

MAX_LAYERS_STORED = 400  # per record, the layers with the largest bounds (reports plot these)
ANALYSIS_VERSION = 1  # bump when the counting rules change, so cached analyses are recomputed


def analysis_precision(precision: str) -> str:
    return precision if precision in ("fp32", "fp16", "bf16", "int8") else "fp32"


def cached_analysis(onnx_path: str | os.PathLike, precision: str):
    """analysis.graph.analyze of the graph, cached by the graph's artifact key and precision, and
    read back from there: a cached cell pays a file read, not the counting. (Kept beside the
    artifacts, not inside one: an artifact directory holds exactly what was exported.)"""
    from effbench.analysis.graph_stats import GraphAnalysis
    from effbench.paths import cache_root

    precision = analysis_precision(precision)
    path = cache_root() / "analyses" / f"{Path(onnx_path).parent.name}-v{ANALYSIS_VERSION}-{precision}.json"
    try:
        return GraphAnalysis.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    from effbench.export.cache import NotCached, building_allowed

    if not building_allowed():
        raise NotCached(str(path))
    from effbench.analysis.graph import analyze

    analysis = analyze(onnx_path, precision=precision)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(analysis.to_json()))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache costs the next cell the counting, nothing else
    return analysis


def graph_summary(analysis) -> dict[str, int]:
    return {
        "flops": int(analysis.flops),
        "other_flops": int(analysis.other_flops),
        "graph_params": int(analysis.params),
        "peak_activation_bytes": int(analysis.peak_activation_bytes),
    }


def roofline_parts(analysis, spec, precision: str, measured_ms: float, device: str) -> dict[str, Any]:
    """{ideal_ms, roofline_ms, efficiency, analysis (for extra["analysis"]), warnings} of a result
    measured at `measured_ms` per inference of the whole batch on catalog entry `spec` (None: unknown)."""
    if spec is None:
        return {"warnings": [f"no peaks known for device {device!r}: no roofline (add it to devices.yaml)"]}
    from effbench.analysis.roofline import model_roofline, where_time_goes

    try:
        mr = model_roofline(analysis, spec, precision, measured_ms=measured_ms, roof="max")
    except EffbenchError as e:
        return {"warnings": [f"no roofline: {e}"]}
    ops, _ = where_time_goes(mr, top=0)
    layers = sorted(mr.layers, key=lambda l: -l.bound_ms)[:MAX_LAYERS_STORED]
    warnings = [w for w in mr.warnings if "bandwidth" not in w]
    if mr.efficiency and mr.efficiency > 1.0:
        warnings.append(
            f"faster than the ideal latency at the {mr.precision} peak of {spec.name} "
            f"({mr.peak_flops_per_s / 1e9:.0f} GFLOP/s, {mr.peak_source}): that peak is too low for this machine "
            "(run `bench devices calibrate --save`, or correct devices.yaml)"
        )
    return {
        "ideal_ms": mr.ideal_ms,
        "roofline_ms": mr.roofline_ms,
        "efficiency": mr.efficiency,
        "warnings": warnings,
        "analysis": {
            "device_spec": spec.name,
            "precision": mr.precision,
            "peak_flops_per_s": mr.peak_flops_per_s,
            "peak_source": mr.peak_source,
            "bandwidth_bytes_per_s": mr.bandwidth_bytes_per_s,
            "bandwidth_source": mr.bandwidth_source,
            "ridge_intensity": mr.ridge_intensity,
            "flops": mr.flops,
            "bytes": sum(l.bytes for l in mr.layers),
            "intensity": mr.intensity if mr.intensity != float("inf") else None,
            "achieved_flops_per_s": mr.achieved_flops_per_s,
            "gap": mr.gap,
            "by_op_type": ops,
            "layers": [
                {
                    "name": l.name,
                    "op_type": l.op_type,
                    "flops": l.flops,
                    "bytes": l.bytes,
                    "intensity": l.intensity if l.intensity != float("inf") else None,
                    "bound_ms": l.bound_ms,
                    "bound": l.bound,
                }
                for l in layers
            ],
            "warnings": mr.warnings,
        },
    }
