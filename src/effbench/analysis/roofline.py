"""Roofline model of a network on a device: per-layer bounds, and where measured time goes.

A layer cannot run faster than max(flops / peak, bytes / bandwidth) (Williams et al. 2009).
The model's "ideal latency" is 2 * MACs / peak and its "computational efficiency" ideal /
measured (Lavin 2024); the "efficiency gap" measured / sum of layer bounds says how far the
run is from what the roofline allows once memory traffic is counted too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from effbench.devices.catalog import DeviceSpec, RoofSource, normalize_precision
from effbench.errors import UsageError

_ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}


@dataclass
class LayerRoofline:
    name: str
    op_type: str
    flops: float
    bytes: float
    intensity: float  # FLOP per byte; inf when the layer moves no bytes
    attainable_flops_per_s: float  # min(peak, intensity * bandwidth)
    bound_ms: float  # max(flops / peak, bytes / bandwidth)
    bound: str  # "compute" | "memory" ("none" for a layer with no work)
    measured_ms: float | None = None
    achieved_flops_per_s: float | None = None
    excess_ms: float | None = None  # measured - bound
    efficiency: float | None = None  # bound / measured
    nodes: list[str] = field(default_factory=list)  # the graph nodes of a fused kernel


@dataclass
class ModelRoofline:
    device: str
    precision: str
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float | None
    ridge_intensity: float | None  # peak / bandwidth: FLOP per byte where the roofs meet
    macs: float
    flops: float
    ideal_ms: float  # 2 * macs / peak
    roofline_ms: float  # sum of layer bounds
    measured_ms: float | None
    efficiency: float | None  # ideal / measured
    gap: float | None  # measured / roofline
    achieved_flops_per_s: float | None
    intensity: float  # model flops / model bytes
    layers: list[LayerRoofline]
    warnings: list[str] = field(default_factory=list)
    batch_size: int = 1
    peak_source: str = ""
    bandwidth_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def model_roofline(
    analysis,
    device: DeviceSpec,
    precision: str | None = None,
    measured_ms: float | None = None,
    layer_times_ms: Mapping[str, float] | None = None,
    batch_size: int | None = None,
    groups: Iterable[tuple[list[str], float]] | None = None,
    roof: RoofSource = "spec",
) -> ModelRoofline:
    """Roofline of `analysis` (effbench.analysis.graph.GraphAnalysis) on `device`.

    precision: defaults to the analysis' precision. measured_ms: end-to-end time of one run.
    layer_times_ms: node name -> measured ms. groups: (node names, ms) per fused kernel; its
    flops and bytes come from graph.aggregate, so tensors kept inside the kernel cost nothing.
    batch_size: the batch the times were measured at, when it differs from the batch of the
    analysis' own inputs: flops and activation bytes are rescaled, weights are read once.
    None (default) means the same batch as the analysis.
    roof: 'spec' (datasheet/detected roofs), 'calibrated' (measured ones) or 'best'.
    """
    precision = normalize_precision(precision or analysis.precision)
    warnings: list[str] = []
    peak, peak_src = _roof(device, roof, warnings, "peak", lambda s: device.peak_entry(precision, s))
    if peak is None:
        hint = (
            "run `bench devices calibrate --save`"
            if device.detect
            else f"add peak_flops: {{{precision}: {{value: ..., source: ...}}}} to its entry in devices.yaml"
        )
        known = ", ".join(device.peak_flops) or "none"
        raise UsageError(
            f"device '{device.name}' has no {precision} peak (it has: {known}); {hint}, or choose another precision"
        )
    bw, bw_src = _roof(device, roof, warnings, "bandwidth", device.bandwidth_entry)
    if bw is None:
        how = " (run `bench devices calibrate --save` to measure it)" if device.kind == "cpu" else ""
        warnings.append(f"no bandwidth for device {device.name}: roofline uses compute roof only{how}")

    analysis_batch = _analysis_batch(analysis)
    batch_size = batch_size or analysis_batch
    scale = batch_size / analysis_batch
    elem = _ELEMENT_BYTES.get(precision, 4)
    times = dict(layer_times_ms or {})
    grouped: dict[str, str] = {}
    layers: list[LayerRoofline] = []
    for names, ms in groups or ():
        names = list(names)
        for n in names:
            if n in grouped:
                raise UsageError(f"node '{n}' is in two fused groups ({grouped[n]} and {'+'.join(names)})")
            grouped[n] = "+".join(names)
        stats = _aggregate(analysis, names)
        ops = "+".join(dict.fromkeys(_node(analysis, n).op_type for n in names))
        layers.append(_layer("+".join(names), ops, stats, scale, elem, peak, bw, ms, names))

    for node in analysis.nodes:
        if node.name in grouped:
            continue
        layers.append(_layer(node.name, node.op_type, node, scale, elem, peak, bw, times.get(node.name)))

    known_names = {n.name for n in analysis.nodes}
    stray = [k for k in times if k not in known_names or k in grouped]
    if stray:
        warnings.append(
            f"{len(stray)} timed layer(s) not counted (not in the graph, or inside a fused group): "
            + ", ".join(stray[:5])
            + (" ..." if len(stray) > 5 else "")
        )

    macs = analysis.macs * scale
    flops = sum(layer.flops for layer in layers)
    total_bytes = sum(layer.bytes for layer in layers)
    ideal_ms = 2 * macs / peak * 1e3
    roofline_ms = sum(layer.bound_ms for layer in layers)
    measured = measured_ms if measured_ms and measured_ms > 0 else None
    return ModelRoofline(
        device=device.name,
        precision=precision,
        peak_flops_per_s=peak,
        bandwidth_bytes_per_s=bw,
        ridge_intensity=peak / bw if bw else None,
        macs=macs,
        flops=flops,
        ideal_ms=ideal_ms,
        roofline_ms=roofline_ms,
        measured_ms=measured_ms,
        efficiency=ideal_ms / measured if measured else None,
        gap=measured / roofline_ms if measured and roofline_ms > 0 else None,
        achieved_flops_per_s=flops / (measured / 1e3) if measured else None,
        intensity=flops / total_bytes if total_bytes else math.inf,
        layers=layers,
        warnings=warnings,
        batch_size=batch_size,
        peak_source=peak_src,
        bandwidth_source=bw_src,
    )


def _roof(device: DeviceSpec, roof: RoofSource, warnings: list[str], what: str, get) -> tuple[float | None, str]:
    """The roof from the asked-for source, else from the other one (with a warning)."""
    entry = get(roof)
    if entry is None and roof not in ("best", "max"):
        other = "calibrated" if roof == "spec" else "spec"
        entry = get(other)
        if entry is not None:
            warnings.append(f"{device.name} has no {roof} {what}: using the {other} value ({entry.source})")
    return (entry.value, entry.source) if entry else (None, "")


def _analysis_batch(analysis) -> int:
    shapes = getattr(analysis, "input_shapes", None) or {}
    for shape in shapes.values():
        if shape and isinstance(shape[0], int) and shape[0] > 0:
            return shape[0]
    return 1


def _aggregate(analysis, names: list[str]):
    from effbench.analysis.graph import aggregate

    try:
        return aggregate(analysis, names)
    except KeyError as e:
        raise UsageError(f"fused group {'+'.join(names)}: {e.args[0] if e.args else e}") from None


def _node(analysis, name: str):
    for node in analysis.nodes:
        if node.name == name:
            return node
    raise UsageError(f"no node named '{name}' in the analysed graph")


def _layer(
    name: str,
    op_type: str,
    stats,
    scale: float,
    elem: int,
    peak: float,
    bw: float | None,
    measured_ms: float | None,
    nodes: list[str] | None = None,
) -> LayerRoofline:
    # Weights are read once whatever the batch; everything else scales with it.
    param_bytes = getattr(stats, "param_bytes", None)
    if param_bytes is None:
        param_bytes = getattr(stats, "params", 0) * elem
    param_bytes = min(param_bytes, stats.bytes_read)
    nbytes = (stats.bytes_read - param_bytes + stats.bytes_written) * scale + param_bytes
    flops = stats.flops * scale
    compute_s = flops / peak
    memory_s = nbytes / bw if bw else 0.0
    if flops == 0 and nbytes == 0:
        bound = "none"
    else:
        bound = "compute" if compute_s >= memory_s else "memory"
    intensity = flops / nbytes if nbytes else math.inf
    bound_ms = max(compute_s, memory_s) * 1e3
    layer = LayerRoofline(
        name=name,
        op_type=op_type,
        flops=flops,
        bytes=nbytes,
        intensity=intensity,
        attainable_flops_per_s=min(peak, intensity * bw) if bw else peak,
        bound_ms=bound_ms,
        bound=bound,
        nodes=list(nodes or []),
    )
    if measured_ms is not None and measured_ms > 0:
        layer.measured_ms = measured_ms
        layer.achieved_flops_per_s = flops / (measured_ms / 1e3)
        layer.excess_ms = measured_ms - bound_ms
        layer.efficiency = bound_ms / measured_ms
    return layer


def _rank_key(measured: bool, excess: float | None, bound_ms: float) -> tuple:
    # Measured rows first, by time lost against the roofline; the rest by their bound.
    return (0, -(excess or 0.0)) if measured else (1, -bound_ms)


def where_time_goes(mr: ModelRoofline, top: int = 10) -> tuple[list[dict], list[dict]]:
    """(all op types, the `top` layers), each ranked by measured - bound; rows without a
    measured time come after the measured ones, ranked by their bound."""
    ops: dict[str, dict] = {}
    for layer in mr.layers:
        row = ops.setdefault(
            layer.op_type,
            {
                "op_type": layer.op_type,
                "count": 0,
                "flops": 0.0,
                "bytes": 0.0,
                "bound_ms": 0.0,
                "measured_ms": None,
                "excess_ms": None,
                "n_measured": 0,
                "compute_bound": 0,
                "memory_bound": 0,
            },
        )
        row["count"] += 1
        row["flops"] += layer.flops
        row["bytes"] += layer.bytes
        row["bound_ms"] += layer.bound_ms
        if layer.bound in ("compute", "memory"):
            row[f"{layer.bound}_bound"] += 1
        if layer.measured_ms is not None:
            row["n_measured"] += 1
            row["measured_ms"] = (row["measured_ms"] or 0.0) + layer.measured_ms
            row["excess_ms"] = (row["excess_ms"] or 0.0) + (layer.excess_ms or 0.0)
    total_measured = sum(r["measured_ms"] or 0.0 for r in ops.values())
    for row in ops.values():
        row["share_of_measured"] = (
            row["measured_ms"] / total_measured if row["measured_ms"] and total_measured else None
        )
    op_rows = sorted(ops.values(), key=lambda r: _rank_key(r["n_measured"] > 0, r["excess_ms"], r["bound_ms"]))

    ranked = sorted(mr.layers, key=lambda l: _rank_key(l.measured_ms is not None, l.excess_ms, l.bound_ms))
    layer_rows = [_clean(asdict(layer)) for layer in ranked[:top]]
    return [_clean(r) for r in op_rows], layer_rows


def to_dict(mr: ModelRoofline) -> dict[str, Any]:
    """JSON-ready dict (infinite intensities become None)."""
    return _clean(asdict(mr))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
