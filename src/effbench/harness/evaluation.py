"""The accuracy and int8 steps of a cell, on the harness side (effbench.accuracy does the work):

- prepare: the model's preprocessing, the evaluation images (checked and decoded before any
  measuring), the fp32 reference's predictions on them, the calibration set and the int8 artifact;
- evaluation_parts: the `accuracy` and `quantization` blocks of the record from what the measuring process
  evaluated on the timed session after timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effbench.backends.base import Backend
from effbench.backends.registry import load_ref
from effbench.errors import UsageError
from effbench.export.cache import Artifact, cache_key, get_or_build


@dataclass
class EvalPlan:
    """What a cell with --eval and/or int8 carries from prepare to assemble (host side only)."""

    preprocess: Any = None
    images: Any = None  # accuracy.data.PreparedImages of --eval
    reference: Any = None  # accuracy.evaluate.Predictions of the fp32 reference on those images
    reference_runtime: str | None = None
    calibration: Any = None  # accuracy.calibration.CalibrationSet (int8)
    backend: Backend | None = None  # the backend whose quantiser makes the int8 artifact (int8 only)

    @property
    def int8_method(self) -> str | None:
        return self.backend.int8_method if self.backend is not None else None

    def payload(self, batch_size: int) -> dict[str, Any]:
        return {
            "eval": {"path": str(self.images.path), "batch_size": batch_size} if self.images else None,
            "runtime_graph": self.backend is not None and self.backend.reads_runtime_graph_for_int8,
        }


def wants(cfg) -> bool:
    return bool(cfg.eval) or cfg.precision == "int8"


def check(cfg, backend, remote: bool) -> None:
    """What can be known wrong about the accuracy options without any work (UsageError)."""
    if remote and (cfg.eval or cfg.precision == "int8"):
        raise UsageError(
            "--eval and int8 run on this machine's backends for now; the ssh agent measures fp32/bf16 "
            "latency only (drop --eval, or use a local device)"
        )
    for option, value, what in (
        ("--eval", cfg.eval, "an ImageFolder (one folder per class)"),
        ("--calib", cfg.calib, "a folder of images"),
        ("--eval-labels", cfg.eval_labels, "a labels file"),
    ):
        is_file = option == "--eval-labels"
        if value and not (Path(value).is_file() if is_file else Path(value).is_dir()):
            raise UsageError(f"{option} {value}: no such {'file' if is_file else 'folder'} (give {what})")
    if cfg.eval_labels and not cfg.eval:
        raise UsageError("--eval-labels needs --eval DIR (the images it labels)")
    if cfg.max_drop is not None and (not backend.accuracy_aware_int8 or cfg.precision != "int8" or not cfg.eval):
        raise UsageError(
            "--max-drop is accuracy-aware int8 quantisation: it needs --backend openvino --precision int8 --eval DIR"
        )
    if cfg.calib and cfg.precision != "int8":
        raise UsageError("--calib calibrates int8 quantisation: add --precision int8 (or drop --calib)")


def _preprocess(cfg, spec, input_shape):
    from effbench.accuracy.preprocess import parse_floats, resolve_preprocess

    return resolve_preprocess(
        input_shape,
        timm_model=spec.target if spec.kind == "timm" else None,
        data_config=spec.extra.get("data_config"),
        crop_pct=cfg.crop_pct,
        interpolation=cfg.interpolation,
        mean=parse_floats(cfg.mean, "--mean"),
        std=parse_floats(cfg.std, "--std"),
    )


def plan(cfg, backend, spec, src, input_shape, num_outputs: int | None, fp32_onnx: str | None, event) -> EvalPlan:
    """Preprocessing, evaluation images with their fp32 reference, calibration set."""
    from effbench.accuracy.calibration import calibration_set
    from effbench.accuracy.data import find_images, prepare_images
    from effbench.accuracy.evaluate import (
        cached_reference,
        check_classes,
        evaluate_onnx,
        evaluate_torch,
        onnx_num_outputs,
        reference_parts,
    )

    out = EvalPlan(preprocess=_preprocess(cfg, spec, input_shape))
    if cfg.eval:
        n_out = num_outputs or (onnx_num_outputs(fp32_onnx) if fp32_onnx else None)
        images = find_images(cfg.eval, option="--eval", labels_file=cfg.eval_labels, num_classes=n_out)
        out.images = prepare_images(
            images, out.preprocess, limit=cfg.eval_limit, skip_bad_images=cfg.skip_bad_images, progress=event
        )
        check_classes(out.images, n_out)
        runtime = "onnxruntime" if spec.kind == "onnx" else "torch"
        onnx_file = fp32_onnx or spec.target

        def compute():
            if runtime == "torch":
                return evaluate_torch(src.module(), out.images)
            return evaluate_onnx(onnx_file, out.images, batch_size=input_shape[0], threads=cfg.threads)

        out.reference, _ = cached_reference(reference_parts(cache_key(src.key_parts()), out.images, runtime), compute)
        out.reference_runtime = runtime
    if cfg.precision == "int8" and backend.quantizer:
        out.calibration = calibration_set(
            cfg.calib, out.preprocess, size=cfg.calib_size, skip_bad_images=cfg.skip_bad_images, progress=event
        )
        out.backend = backend
    return out


def int8_artifact(
    fp32: Artifact, onnx_art: Artifact, ev: EvalPlan, options, batch: int, max_drop: float | None
) -> Artifact:
    """The quantised artifact the backend's quantiser makes from the fp32 one, in the same format and
    file name, cached under the calibration set's hash."""
    from effbench.accuracy import quantize as q

    backend, calib, source = ev.backend, ev.calibration, fp32.path
    assert source is not None and backend is not None and backend.quantizer
    quantize = load_ref(backend.quantizer)
    validation = ev.images if max_drop is not None else None
    parts = q.quantization_parts(backend, calib, options, fp32.key, validation, max_drop)
    art = get_or_build(
        fp32.format,
        parts,
        Path(source).name,
        lambda t: q.write_info(t, quantize(source, t, calib, batch, options, max_drop=max_drop, validation=validation)),
    )
    if not art.cached:
        art.export_s += fp32.export_s if not fp32.cached else 0.0
    art.meta["onnx_path"] = str(onnx_art.path)  # parity and the graph analysis use the fp32 graph
    return art


def representative_inputs(ev: EvalPlan, batch: int) -> np.ndarray:
    """An int8 cell is timed and parity-checked on a real calibration batch: inputs far outside the
    calibrated range would saturate and say nothing about the engine."""
    return next(iter(ev.calibration.batches(batch)))


def placement_int8_share(runtime_info: dict[str, Any]) -> dict[str, Any]:
    """What ran in int8, from the session's placement summary (nodes with their precision and MACs)."""
    placement = runtime_info.get("placement") or {}
    units = (placement.get("units") or {}).values()
    int8_nodes = sum(u["precisions"].get("int8", 0) for u in units)
    int8_macs = sum((u.get("precision_macs") or {}).get("int8", 0) for u in units)
    nodes, macs = placement.get("nodes") or 0, placement.get("macs") or 0
    return {
        "int8_macs_share": round(int8_macs / macs, 4) if macs else None,
        "int8_macs": int8_macs,
        "macs": macs or None,
        "int8_nodes": int8_nodes,
        "compute_nodes": nodes,
    }


def evaluation_parts(
    ev: EvalPlan, cell, after: dict[str, Any], threads: int | None, runtime_info: dict[str, Any] | None = None
) -> tuple[dict | None, dict | None, list[str]]:
    """(accuracy block, quantization block, warnings) of a measured cell."""
    from effbench.accuracy.evaluate import Predictions, accuracy_record

    warnings: list[str] = []
    accuracy = quantization = None
    if ev.images is not None and after.get("eval"):
        accuracy = accuracy_record(
            Predictions.from_dict(after["eval"]),
            ev.images,
            reference=ev.reference,
            reference_info={"runtime": ev.reference_runtime, "precision": "fp32"},
            limit=cell.cfg.eval_limit,
            calibration_root=ev.calibration.images.root if ev.calibration else None,
        )
        warnings.extend(accuracy["warnings"])
    if ev.backend is not None:
        from effbench.accuracy.quantize import quantization_info

        path = cell.artifact.path
        quantization = dict(quantization_info(path))
        if ev.backend.int8_coverage:
            coverage = load_ref(ev.backend.int8_coverage)
            quantization.update(coverage(path, cell.artifact.meta.get("onnx_path"), after, threads))
        else:
            quantization.update(placement_int8_share(runtime_info or {}))
        if ev.calibration.warning:
            warnings.append(ev.calibration.warning)
    return accuracy, quantization, warnings
