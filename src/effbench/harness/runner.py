"""One cell end to end, in this process: resolve, export, load, measure, check parity, record.

`effbench.harness.worker` runs this in a child process; nothing here knows about isolation.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from effbench.backends.base import Backend
from effbench.backends.registry import get_backend
from effbench.errors import EffbenchError, UsageError
from effbench.export.pipeline import ModelSource, build_artifact
from effbench.harness import stability
from effbench.harness.config import RunConfig
from effbench.harness.env import fingerprint
from effbench.harness.measure import run_scenario
from effbench.harness.meters.memory import MemoryMeter
from effbench.harness.parity import compare
from effbench.harness.result import Result
from effbench.harness.stats import summarize
from effbench.models.registry import ModelSpec, resolve

Event = Callable[[str, float, str], None]


def check_cell(cfg: RunConfig) -> tuple[Backend, ModelSpec]:
    """Everything that can be known wrong before any work: raises UsageError."""
    from effbench.devices.target import resolve_target

    backend = get_backend(cfg.backend)
    try:
        where = resolve_target(cfg.device, cfg.devices_file).execution  # a catalog name runs on cpu or cuda:N
    except ValueError:  # a malformed cuda:N: the backend's own reason names it
        where = cfg.device
    reason = backend.unavailable_reason(where)
    if reason:
        raise UsageError(f"backend {backend.name!r} is not usable here: {reason}")
    reason = backend.check_precision(cfg.precision, where)
    if reason:
        raise UsageError(f"precision {cfg.precision!r} not available: {reason}")
    return backend, resolve(cfg.model, cfg.input_size)


def make_inputs(spec: ModelSpec, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *spec.input_shape), dtype=np.float32)
    return {spec.input_name: x}


def reference_outputs(src: ModelSource, inputs: dict[str, np.ndarray], onnx_path) -> tuple[list[np.ndarray], str]:
    """PyTorch fp32 for torch-defined models; ONNX Runtime for models given as ONNX files."""
    if src.spec.kind == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path or src.spec.target), providers=["CPUExecutionProvider"])
        return [np.asarray(o) for o in sess.run(None, inputs)], "onnxruntime"
    import torch

    model = src.module().float()
    with torch.inference_mode():
        out = model(torch.from_numpy(next(iter(inputs.values()))))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return [out.float().numpy()], "torch"


def run_cell(cfg: RunConfig, event: Event | None = None) -> Result:
    event = event or (lambda *a: None)
    backend, spec = check_cell(cfg)
    from effbench.devices.target import resolve_target

    target = resolve_target(cfg.device, cfg.devices_file)
    result_device, config, config_hash = cfg.device, cfg.to_dict(), cfg.config_hash()
    cfg = cfg.model_copy(update={"device": target.execution})  # what the backend runs on
    input_shape = (cfg.batch_size, *spec.input_shape)
    src = ModelSource(spec, cfg.pretrained, cfg.seed)
    result = Result(model=spec.id, backend=backend.name, device=result_device, scenario=cfg.scenario,
                    batch_size=cfg.batch_size, precision=cfg.precision, tag=cfg.tag,
                    config=config, config_hash=config_hash, threads=cfg.threads, cpus=cfg.cpus)

    artifact = None
    if backend.artifact_format != "none":
        event("export", 0.0, f"{backend.artifact_format} artifact")
        artifact = build_artifact(backend.artifact_format, src, input_shape, cfg.options.get("exporter", "torchscript"),
                                  precision=cfg.precision, options=cfg.options, device=cfg.device)
        result.export_s = round(artifact.export_s, 3)
        result.artifact_bytes = artifact.bytes
        result.artifact_cached = artifact.cached
        result.extra["artifact_path"] = str(artifact.path) if artifact.path else None
        event("export", 1.0, "cached" if artifact.cached else f"exported in {artifact.export_s:.1f} s")

    inputs = make_inputs(spec, cfg.batch_size, cfg.seed)
    idle = _idle_power(cfg)
    mem = MemoryMeter()
    event("load", 0.0, backend.name)
    mem.start_load()
    t0 = time.perf_counter()
    session = backend.load(artifact, cfg, input_shape)
    session.bind(inputs)
    result.load_s = round(time.perf_counter() - t0, 4)
    mem.end_load()
    build_s = session.runtime_info.get("engine_build_s")
    if build_s:  # an engine built at load (TensorRT) is reported apart from loading
        result.load_s = round(max(0.0, result.load_s - build_s), 4)
        result.export_s = round((result.export_s or 0.0) + build_s, 3)
    event("load", 1.0, f"{result.load_s:.2f} s")

    load_before = stability.loadavg()
    m = run_scenario(session, cfg, event)
    load_after = stability.loadavg()
    layers = None
    if cfg.options.get("profile") == "1":  # a profiled run is its own cell: profiling slows a runtime
        event("profile", 0.0, "per-layer times")
        layers = session.profile(int(cfg.options.get("profile_iters", 20)))
    outputs = session.outputs()
    result.memory = mem.report(result.artifact_bytes)
    gpu_mem = session.device_memory()
    if gpu_mem:
        result.memory["device"] = gpu_mem
    result.energy = _energy(session, cfg, event, idle)
    result.warnings.extend(f"energy: {w}" for w in (result.energy or {}).get("warnings", []))
    session.close()

    samples_ms = m.samples_ms
    summary = summarize(samples_ms)
    result.latency_ms = summary.to_dict()
    result.samples_ms = [round(float(v), 6) for v in samples_ms]
    result.iterations = int(samples_ms.size)
    result.first_inference_ms = round(m.first_ns / 1e6, 4)
    if m.throughput is not None:
        result.throughput_per_s = m.throughput.images_per_s
        result.runtime["requests_in_flight"] = m.throughput.requests_in_flight
        result.runtime.update(m.throughput.info)
    else:
        result.throughput_per_s = cfg.batch_size * 1000.0 / summary.median if summary.median > 0 else None
    result.precision_ran = session.precision_ran
    result.runtime.update(session.runtime_info)
    result.extra["warmup"] = {"iterations": m.warmup_iters, "seconds": round(m.warmup_s, 3)}
    result.extra["measure_s"] = round(m.measure_s, 3)
    result.warnings.extend(m.notes)

    diag, warns = stability.diagnose(samples_ms, cfg.threads, load_before, load_after,
                                     m.target_ci, m.reached_ci, m.target_met, (summary.ci95_low, summary.ci95_high))
    result.stability = diag
    result.warnings.extend(warns)
    if session.precision_ran != cfg.precision:
        result.warnings.append(f"asked for {cfg.precision}, the runtime ran {session.precision_ran}")

    if cfg.parity and outputs:
        event("parity", 0.0, "reference")
        onnx_path = (artifact.meta.get("onnx_path") or artifact.path) if artifact and artifact.format in ("onnx", "openvino") else None
        ref, ref_name = reference_outputs(src, inputs, onnx_path)
        parity = compare(outputs, ref, session.precision_ran, ref_name)
        result.parity = parity.__dict__
        if not parity.ok:
            result.warnings.append(
                f"parity failure: max rel err {parity.max_rel_err:.2e}, cosine {parity.cosine:.5f} vs {ref_name}")
    result.params = _params(src)
    _attach_analysis(result, cfg, artifact, summary.median, src, target)
    if layers is not None:
        from effbench.analysis.profile import attach_profile

        attach_profile(result, cfg, artifact, layers, src, target)
    result.env = fingerprint(cfg.threads, cfg.cpus, cfg.device)
    return result


def _idle_power(cfg: RunConfig) -> dict | None:
    """Idle power measured before the model is loaded, while the device is really idle."""
    from effbench.harness.meters.energy import idle_before_run

    return idle_before_run(cfg)


def _energy(session, cfg: RunConfig, event: Event, idle: dict | None) -> dict:
    """Energy per image from the device's meter (effbench.harness.meters.energy), or why not."""
    from effbench.harness.meters.energy import measure_energy

    return measure_energy(session, cfg, event, idle)


def _params(src: ModelSource) -> int | None:
    try:
        if src.spec.kind == "onnx":
            import onnx

            model = onnx.load(src.spec.target)
            return int(sum(np.prod(t.dims) for t in model.graph.initializer))
        return int(sum(p.numel() for p in src.module().parameters()))
    except EffbenchError:
        return None


def _attach_analysis(result: Result, cfg: RunConfig, artifact, median_ms: float, src, target) -> None:
    """MACs, ideal and roofline latency, efficiency (skipped with --opt analysis=0)."""
    if cfg.options.get("analysis") == "0" or artifact is None:
        return
    from effbench.analysis.summary import attach

    attach(result, cfg, artifact, median_ms, src, target)
