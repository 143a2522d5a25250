"""Attach the graph analysis and roofline to a measured result: MACs, ideal and roofline latency,
computational efficiency (Lavin 2024) and the efficiency gap, with the layers that hold it back."""

from __future__ import annotations

from effbench.errors import EffbenchError

MAX_LAYERS_STORED = 400  # per record, the layers with the largest bounds (reports plot these)


def onnx_path_of(artifact, cfg, spec_source=None):
    """The ONNX graph behind an artifact (exported on demand, from the cache, for torch cells)."""
    if artifact is None:
        return None
    if artifact.format == "onnx":
        return artifact.path
    if artifact.meta.get("onnx_path"):
        return artifact.meta["onnx_path"]
    if spec_source is not None:
        from effbench.export.pipeline import onnx_artifact

        shape = (cfg.batch_size, *spec_source.spec.input_shape)
        return onnx_artifact(spec_source, shape, cfg.options.get("exporter", "torchscript")).path
    return None


def analysis_for(onnx_path, precision: str):
    from effbench.analysis.graph import analyze

    return analyze(onnx_path, precision=precision if precision in ("fp32", "fp16", "bf16", "int8") else "fp32")


def attach(result, cfg, artifact, median_ms: float, source=None, target=None) -> None:
    try:
        path = onnx_path_of(artifact, cfg, source)
        if path is None:
            return
        analysis = analysis_for(path, result.precision_ran or cfg.precision)
    except EffbenchError as e:
        result.warnings.append(f"no graph analysis: {e}")
        return
    result.macs = int(analysis.macs)
    result.extra["graph"] = {"flops": int(analysis.flops), "other_flops": int(analysis.other_flops),
                             "graph_params": int(analysis.params),
                             "peak_activation_bytes": int(analysis.peak_activation_bytes)}
    if target is None or target.spec is None:
        result.warnings.append(f"no peaks known for device {cfg.device!r}: no roofline (add it to devices.yaml)")
        return
    from effbench.analysis.roofline import model_roofline, where_time_goes

    # time of one inference of the whole batch: per request in the latency scenario,
    # batch / throughput when requests overlap
    measured = median_ms
    if cfg.scenario == "throughput" and result.throughput_per_s:
        measured = cfg.batch_size * 1000.0 / result.throughput_per_s
    try:
        mr = model_roofline(analysis, target.spec, result.precision_ran or cfg.precision, measured_ms=measured,
                            roof="max")  # calibrated roofs where `bench devices calibrate --save` made them
    except EffbenchError as e:
        result.warnings.append(f"no roofline: {e}")
        return
    result.ideal_ms = mr.ideal_ms
    result.roofline_ms = mr.roofline_ms
    result.efficiency = mr.efficiency
    ops, _ = where_time_goes(mr, top=0)
    layers = sorted(mr.layers, key=lambda l: -l.bound_ms)[:MAX_LAYERS_STORED]
    result.extra["analysis"] = {
        "device_spec": target.spec.name,
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
        "layers": [{"name": l.name, "op_type": l.op_type, "flops": l.flops, "bytes": l.bytes,
                    "intensity": l.intensity if l.intensity != float("inf") else None,
                    "bound_ms": l.bound_ms, "bound": l.bound} for l in layers],
        "warnings": mr.warnings,
    }
    result.warnings.extend(w for w in mr.warnings if "bandwidth" not in w)
    if mr.efficiency and mr.efficiency > 1.0:
        result.warnings.append(
            f"faster than the ideal latency at the {mr.precision} peak of {target.spec.name} "
            f"({mr.peak_flops_per_s / 1e9:.0f} GFLOP/s, {mr.peak_source}): that peak is too low for this machine "
            "(run `bench devices calibrate --save`, or correct devices.yaml)")
