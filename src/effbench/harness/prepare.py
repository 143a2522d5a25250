"""Before measuring: check a cell (everything that can be known wrong, up front), then prepare it —
the artifact (exported or from the cache), the input batch, the parity reference and the graph
analysis, each cached by content — so that measuring is loading and timing, nothing else.

A cached cell prepares without building a PyTorch model (or importing torch) at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from effbench.backends.base import ArtifactRef, Backend, BackendOptions
from effbench.backends.registry import get_backend
from effbench.core.scenarios import get_scenario
from effbench.core.settings import MeasureSettings
from effbench.errors import UsageError
from effbench.export.cache import Artifact, NotCached, building_allowed, cache_key, check_writable
from effbench.harness import evaluation, loadgen_logs
from effbench.harness.config import RunConfig, local_cpus_problem
from effbench.harness.evaluation import EvalPlan
from effbench.harness.meters.energy import meter_options
from effbench.harness.options import CommonOptions, parse_all
from effbench.models.data_config import input_source, with_data_config
from effbench.models.registry import ModelSpec, check_buildable, resolve
from effbench.paths import cache_root


@dataclass
class Checked:
    """A cell that passed every check that needs no work."""

    cfg: RunConfig
    backend: Backend
    spec: ModelSpec
    common: CommonOptions
    options: BackendOptions
    target: Any  # devices.target.Target: where it executes and the catalog entry with its peaks


@dataclass
class PreparedCell:
    """A cell ready to measure anywhere: everything a launcher hands to the measuring process."""

    cfg: RunConfig
    backend: str
    model_id: str
    input_name: str
    settings: MeasureSettings
    artifact: ArtifactRef
    artifact_cached: bool
    export_s: float
    artifact_bytes: int
    inputs_path: str
    target: Any
    reference_path: str | None = None
    reference_runtime: str | None = None
    analysis_onnx: str | None = None  # the ONNX graph whose cached analysis the result uses
    params: int | None = None
    prepare_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    evaluation: EvalPlan | None = None  # --eval images and their reference, int8 calibration (host side)
    data_config: dict[str, Any] = field(default_factory=dict)  # input size and preprocessing, with their sources

    def payload(self) -> dict[str, Any]:
        """What a measuring process needs (JSON-able): the settings are the whole measurement; the rest
        says where the artifact, the input and (with --eval) the images are."""
        out = {
            "backend": self.backend,
            "settings": self.settings.to_dict(),
            "artifact": self.artifact.to_dict(),
            "inputs_path": self.inputs_path,
            "input_name": self.input_name,
        }
        if self.evaluation is not None:
            out.update(self.evaluation.payload(self.cfg.batch_size))
        return out


def check_cell(cfg: RunConfig) -> Checked:
    """Everything that can be known wrong before any work (UsageError, exit code 2)."""
    from effbench.devices.target import resolve_target

    backend = get_backend(cfg.backend)
    target = resolve_target(cfg.device, cfg.devices_file)
    why_not = get_scenario(cfg.scenario).unavailable(target.execution)
    if why_not:
        raise UsageError(f"--scenario {cfg.scenario} on device {cfg.device!r}: {why_not}")
    if target.execution == "remote":
        if backend.core_runtime is None:
            from effbench.core.runtimes import RUNTIMES

            raise UsageError(
                f"backend {backend.name!r} cannot run on remote device {cfg.device!r}: the agent runs "
                f"{', '.join(sorted(RUNTIMES))}"
            )
        if cfg.precision not in backend.precisions:
            raise UsageError(
                f"precision {cfg.precision!r} not available: {backend.name} runs {', '.join(backend.precisions)}"
            )
    else:
        reason = backend.unavailable_reason(target.execution)
        if reason:
            raise UsageError(f"backend {backend.name!r} is not usable here: {reason}")
        why = local_cpus_problem(cfg.cpus) if cfg.cpus is not None else None
        if why:
            raise UsageError(f"invalid --cpus {cfg.cpus!r} for device {cfg.device!r}: {why}")
        reason = backend.check_precision(cfg.precision, target.execution)
        if reason:
            raise UsageError(f"precision {cfg.precision!r} not available: {reason}")
    common, options = parse_all(backend, cfg.options)
    spec = resolve(cfg.model, cfg.input_size, cfg.weights)
    if cfg.pretrained and spec.kind != "timm":
        raise UsageError(
            "--pretrained applies to timm models; a factory or an ONNX file brings its own weights (or pass --weights)"
        )
    if spec.static_batch and spec.static_batch != cfg.batch_size and backend.artifact_format != "none":
        raise UsageError(
            f"ONNX file {spec.target} has a fixed batch of {spec.static_batch}: --batch "
            f"{cfg.batch_size} needs a file exported with a dynamic batch dimension (or use --batch "
            f"{spec.static_batch})"
        )
    _check_input_memory(cfg, spec)
    evaluation.check(cfg, backend, target.execution == "remote")
    if backend.artifact_format != "none":
        if spec.kind == "factory":  # checked where its data config is learnt: an import that crashes spares bench
            spec = with_data_config(spec, cfg.input_size, min(cfg.timeout_s, 120.0))
        else:
            check_buildable(spec)
        check_writable()
    backend.runtime_options(options, cfg.model_copy(update={"device": target.execution}))  # raises on bad combos
    return Checked(cfg, backend, spec, common, options, target)


def _check_input_memory(cfg: RunConfig, spec: ModelSpec) -> None:
    elements = cfg.batch_size * int(np.prod(spec.input_shape))
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:
        return
    if elements * 4 * 8 > available:  # the input, its copies in the runtime and the activations
        raise UsageError(
            f"--batch {cfg.batch_size} at input {'x'.join(map(str, spec.input_shape))} needs "
            f"{elements * 4 / 2**30:.1f} GiB for the input alone, more than this machine can hold "
            f"({available / 2**30:.1f} GiB available): use a smaller --batch or --input-size"
        )


def inputs_file(shape: tuple[int, ...], seed: int) -> Path:
    """The seeded standard-normal input batch of `shape`, as .npy in the cache."""
    path = cache_root() / "inputs" / f"{'x'.join(map(str, shape))}-seed{seed}.npy"
    if not path.is_file():
        x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        _save_npy(path, x)
    return path


def _save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    tmp.replace(path)


def reference_file(
    src, input_shape: tuple[int, ...], seed: int, onnx_path: str | None, inputs: Path | None = None
) -> tuple[Path, str]:
    """(the fp32 reference outputs for the inputs, the runtime that computed them): PyTorch for
    torch-defined models, ONNX Runtime for ONNX files; cached by model key, inputs and input shape.
    The inputs are the seeded ones unless `inputs` (an .npy file) is given."""
    runtime = "onnxruntime" if src.spec.kind == "onnx" else "torch"
    which: dict[str, Any] = {"seed": seed} if inputs is None else {"inputs": inputs.stem}
    key = cache_key({**src.key_parts(), "input_shape": list(input_shape), **which, "reference": runtime})
    path = cache_root() / "references" / f"{key}.npy"
    if path.is_file():
        return path, runtime
    if not building_allowed():
        raise NotCached(key)
    x = np.load(inputs if inputs is not None else inputs_file(input_shape, seed))
    if runtime == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path or src.spec.target), providers=["CPUExecutionProvider"])
        out = np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0])
    else:
        import torch

        with torch.inference_mode():
            y = src.module().float()(torch.from_numpy(x))
        out = (y[0] if isinstance(y, (tuple, list)) else y).float().numpy()
    _save_npy(path, out)
    return path, runtime


def _onnx_of(art: Artifact, src, input_shape, exporter: str) -> Artifact | None:
    """The ONNX artifact behind `art` (exported, from the cache, for torch/Core ML/TensorRT cells)."""
    if art.format == "onnx":
        return art
    if art.format == "none":
        return None
    from effbench.export.pipeline import onnx_artifact

    return onnx_artifact(src, input_shape, exporter)


def prepare(checked: Checked, event=None) -> PreparedCell:
    """Export (or find) the artifact, the inputs, the reference outputs and the graph analysis."""
    from effbench.analysis.summary import cached_analysis
    from effbench.export.pipeline import ModelSource, artifact_ref, build_artifact

    event = event or (lambda *a: None)
    t0 = time.perf_counter()
    cfg, backend, spec = checked.cfg, checked.backend, checked.spec
    src = ModelSource(spec, cfg.pretrained, cfg.seed)
    input_shape = (cfg.batch_size, *spec.input_shape)
    event("prepare", 0.0, f"{backend.artifact_format} artifact")
    art = build_artifact(
        backend,
        src,
        input_shape,
        checked.common.exporter,
        precision=cfg.precision,
        options=checked.options.model_dump(),
        device=checked.target.execution,
    )
    warnings: list[str] = []
    onnx_art = _onnx_of(art, src, input_shape, checked.common.exporter)
    onnx_path = art.meta.get("onnx_path") or (str(art.path) if art.format == "onnx" else None)
    inputs = inputs_file(input_shape, cfg.seed)
    reference = reference_runtime = None
    if cfg.parity and art.format != "none":
        event("prepare", 0.5, "reference outputs")
        ref, reference_runtime = reference_file(src, input_shape, cfg.seed, onnx_path)
        reference = str(ref)
    ev = None
    if evaluation.wants(cfg) and art.format != "none":
        n_out = int(np.load(reference).shape[-1]) if reference else None
        ev = evaluation.plan(cfg, backend, spec, src, input_shape, n_out, onnx_path, event)
        if ev.int8_method and onnx_art is not None:
            event("prepare", 0.6, "int8 quantisation")
            art = evaluation.int8_artifact(art, onnx_art, ev, checked.options, cfg.batch_size, cfg.max_drop)
            batch = evaluation.representative_inputs(ev, cfg.batch_size)
            inputs = cache_root() / "inputs" / f"calib-{ev.calibration.hash[:24]}-b{cfg.batch_size}.npy"
            if not inputs.is_file():
                _save_npy(inputs, batch)
            if cfg.parity:
                ref, reference_runtime = reference_file(src, input_shape, cfg.seed, onnx_path, inputs)
                reference = str(ref)
    analysis_onnx = None
    if checked.common.analysis and onnx_art is not None:
        event("prepare", 0.8, "graph analysis")
        cached_analysis(str(onnx_art.path), cfg.precision)
        analysis_onnx = str(onnx_art.path)
    params = art.meta.get("params") or (onnx_art.meta.get("params") if onnx_art else None)
    exec_cfg = cfg.model_copy(update={"device": checked.target.execution})
    settings = MeasureSettings(
        runtime=backend.name,
        input_shape=list(input_shape),
        device=checked.target.execution,
        precision=cfg.precision,
        scenario=cfg.scenario,
        threads=cfg.threads,
        cpus=cfg.cpus,
        warmup_s=cfg.warmup_s,
        warmup_iters=cfg.warmup_iters,
        duration_s=cfg.duration_s,
        min_iters=cfg.min_iters,
        max_iters=cfg.max_iters,
        target_ci=cfg.target_ci,
        max_duration_s=cfg.max_duration_s,
        requests=cfg.requests,
        profile_iters=cfg.profile_iters,
        window_s=cfg.window_s,
        telemetry=cfg.telemetry,
        max_start_temp=cfg.max_start_temp,
        cooldown_timeout_s=cfg.cooldown_timeout_s,
        cooldown_s=cfg.cooldown_s,
        target_qps=cfg.target_qps,
        latency_bound_ms=cfg.latency_bound_ms,
        samples_per_query=cfg.samples_per_query,
        loadgen_dir=loadgen_logs.new_dir(cfg),
        runtime_options=backend.runtime_options(checked.options, exec_cfg),
        meters=meter_options(checked.common, cfg.energy_window_s, backend.does_work),
    )
    event("prepare", 1.0, "cached" if art.cached else f"exported in {art.export_s:.1f} s")
    return PreparedCell(
        cfg=cfg,
        backend=backend.name,
        model_id=spec.id,
        input_name=spec.input_name,
        settings=settings,
        artifact=artifact_ref(art),
        artifact_cached=art.cached,
        export_s=art.export_s,
        artifact_bytes=art.bytes,
        inputs_path=str(inputs),
        target=checked.target,
        reference_path=reference,
        reference_runtime=reference_runtime,
        analysis_onnx=analysis_onnx,
        params=int(params) if params else None,
        prepare_s=time.perf_counter() - t0,
        warnings=warnings,
        evaluation=ev,
        data_config=_data_config_record(cfg, spec, ev),
    )


def _data_config_record(cfg: RunConfig, spec: ModelSpec, ev: EvalPlan | None) -> dict[str, Any]:
    """The input size and preprocessing a cell ran with, each with where it came from."""
    out: dict[str, Any] = {"input_size": list(spec.input_shape)}
    out["input_size_source"] = input_source(spec, cfg.input_size)
    if spec.extra.get("data_config"):
        out["declared"] = spec.extra["data_config"]
    if ev is not None and ev.preprocess is not None:
        out["preprocess"] = ev.preprocess.to_dict()
    return out
