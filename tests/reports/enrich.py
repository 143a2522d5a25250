"""Roofline analysis and a per-layer profile for real stored records, made by the real modules.

Why this exists: `bench run` fills `extra.analysis` (and `bench profile` writes profile records)
through `effbench.analysis.summary` / `effbench.analysis.commands`, which are being written in
parallel with the reports. Until a run produces them by itself, the report tests attach what those
modules will attach, computed the same way from real inputs:

- the graph: `effbench.analysis.graph.analyze` on the ONNX file the run exported (artifact cache);
- the roofs: this machine's CPU from the device catalog (`local-cpu`), with its fp32 peak and
  memory bandwidth measured by `effbench.devices.calibrate` (a second or two);
- the roofline: `effbench.analysis.roofline.model_roofline` with the record's measured median;
- per-layer times: ONNX Runtime's own profiler (graph optimisations off, so kernel names are the
  graph's node names), median over a few runs.

Records that already carry `extra.analysis` are left as they are.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import uuid
from pathlib import Path

import numpy as np


def onnx_artifact(model: str, cache: str | os.PathLike | None = None) -> Path | None:
    """The batch-1 ONNX export of `model` in the artifact cache."""
    root = Path(cache or os.environ["EFFBENCH_CACHE"]) / "artifacts"
    for meta_file in sorted(root.glob("*/meta.json")):
        meta = json.loads(meta_file.read_text())
        parts = meta.get("parts") or {}
        if meta.get("format") == "onnx" and parts.get("model") == model and (parts.get("input_shape") or [1])[0] == 1:
            path = meta_file.parent / "model.onnx"
            if path.exists():
                return path
    return None


def calibrated_cpu():
    """The catalog's local-cpu with measured fp32 peak and bandwidth (roof='best' uses them)."""
    from effbench.devices.calibrate import calibrate, calibration_block
    from effbench.devices.catalog import Calibration, load_catalog

    spec = load_catalog()["local-cpu"]
    results = calibrate("cpu", seconds=1.0)
    return spec.model_copy(update={"calibrated": Calibration(**calibration_block(results))})


def _analysis_dict(mr, device_name: str) -> dict:
    from effbench.analysis.roofline import where_time_goes

    ops, _ = where_time_goes(mr, top=0)
    layers = []
    for layer in mr.layers:
        inten = layer.intensity if layer.intensity != float("inf") else None
        layers.append({"name": layer.name, "op_type": layer.op_type, "flops": layer.flops, "bytes": layer.bytes,
                       "intensity": inten, "bound_ms": layer.bound_ms, "bound": layer.bound,
                       "measured_ms": layer.measured_ms, "achieved_flops_per_s": layer.achieved_flops_per_s})
    return {
        "device_spec": device_name, "peak_flops_per_s": mr.peak_flops_per_s,
        "bandwidth_bytes_per_s": mr.bandwidth_bytes_per_s, "flops": mr.flops,
        "bytes": sum(layer.bytes for layer in mr.layers), "intensity": mr.intensity if mr.intensity != float("inf") else None,
        "achieved_flops_per_s": mr.achieved_flops_per_s,
        "by_op_type": [{k: o.get(k) for k in ("op_type", "count", "flops", "bytes", "bound_ms", "measured_ms")}
                       for o in ops],
        "layers": layers,
    }


def attach_analysis(rec: dict, onnx_path: Path, spec) -> dict:
    """A copy of `rec` with extra.analysis, macs, ideal_ms, roofline_ms and efficiency filled in."""
    from effbench.analysis.graph import analyze
    from effbench.analysis.roofline import model_roofline

    out = copy.deepcopy(rec)
    if (out.get("extra") or {}).get("analysis"):
        return out
    graph = analyze(onnx_path, precision="fp32")
    mr = model_roofline(graph, spec, precision="fp32", measured_ms=out["latency_ms"]["median"], roof="best")
    out.setdefault("extra", {})["analysis"] = _analysis_dict(mr, spec.name)
    for key, value in (("macs", int(mr.macs)), ("ideal_ms", mr.ideal_ms), ("roofline_ms", mr.roofline_ms),
                       ("efficiency", mr.efficiency)):
        if out.get(key) is None:
            out[key] = value
    return out


def ort_layer_times(onnx_path: Path, runs: int = 5) -> dict[str, float]:
    """Node name -> median ms per run, from ONNX Runtime's profiler."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.profile_file_prefix = str(Path(os.environ["EFFBENCH_CACHE"]) / f"ort-profile-{uuid.uuid4().hex[:8]}")
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape]).astype(np.float32)
    for _ in range(runs + 1):
        sess.run(None, {inp.name: x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            per_node.setdefault(e["name"][: -len("_kernel_time")], []).append(e["dur"] / 1e3)
    # the first run is a warm-up: keep the last `runs` of each node
    return {name: statistics.median(ts[-runs:]) for name, ts in per_node.items()}


def profile_record(rec: dict, onnx_path: Path, spec) -> dict:
    """A `scenario: profile` record for rec's model, with measured per-layer times (ONNX Runtime profiler)."""
    from effbench.analysis.graph import analyze
    from effbench.analysis.roofline import model_roofline, where_time_goes

    times = ort_layer_times(onnx_path)
    graph = analyze(onnx_path, precision="fp32")
    known = {n.name for n in graph.nodes}
    mapped = {k: v for k, v in times.items() if k in known}
    mr = model_roofline(graph, spec, precision="fp32", measured_ms=rec["latency_ms"]["median"],
                        layer_times_ms=mapped, roof="best")
    ops, _ = where_time_goes(mr, top=0)
    analysis = _analysis_dict(mr, spec.name)
    out = copy.deepcopy(rec)
    out["id"] = uuid.uuid4().hex
    out["scenario"] = "profile"
    out["samples_ms"] = []
    out.setdefault("extra", {})["profile"] = {
        "layers": analysis["layers"],
        "op_types": [{k: o.get(k) for k in ("op_type", "count", "flops", "bytes", "bound_ms", "measured_ms")}
                     for o in ops],
        "profiled_total_ms": sum(times.values()),
        "timed_median_ms": rec["latency_ms"]["median"],
        "unmapped_ms": sum(v for k, v in times.items() if k not in known),
    }
    out["extra"]["analysis"] = analysis
    return out
