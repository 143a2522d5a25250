"""Post-training int8 quantisation for the CPU runtimes.

- OpenVINO: NNCF `nncf.quantize` over calibration batches (preset, subset size, fast bias correction),
  or `nncf.quantize_with_accuracy_control` with the evaluation set as validation data (`max_drop`),
  recording which operations it reverted to floating point.
- ONNX Runtime: `quant_pre_process` (shape inference + optimisation, as ORT recommends), then
  `quantize_static` in QDQ format, per-channel by default, calibration minmax | entropy | percentile.

Each `quantize_*` writes its artifact into a target path: call it inside
`export.cache.get_or_build(fmt, quantization_parts(...), filename, build)` so the artifact is cached
under the calibration set's hash. A side file `quantization.json` beside the artifact records what was
done (read it back with `quantization_info`, on a cache hit too).

What of the result ran in int8 is read back by `export.int8_coverage`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from effbench.accuracy.calibration import CalibrationSet
from effbench.accuracy.data import PreparedImages
from effbench.backends.base import Backend
from effbench.backends.onnxruntime_backend import OnnxRuntimeBackend
from effbench.backends.openvino_backend import OpenVINOBackend
from effbench.errors import RunFailed, UsageError

INFO_FILE = "quantization.json"


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in (str(e).strip() or type(e).__name__).splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


def quantization_parts(
    backend: Backend,
    calib: CalibrationSet,
    options,
    source_key: str,
    validation: PreparedImages | None = None,
    max_drop: float | None = None,
) -> dict[str, Any]:
    """Cache-key parts of a quantised artifact: its fp32 source artifact's key, the calibration set's
    hash, the backend's quantiser settings, the versions of the backend's packages (and the validation
    set of an accuracy-aware one)."""
    parts = {
        "source": source_key,
        "quantize": backend.int8_method,
        "calibration": calib.hash,
        "options": {**backend.quant_settings(options), "max_drop": max_drop},
        "versions": {p: _version(p) for p in backend.packages},
    }
    if validation is not None and max_drop is not None:  # only accuracy control reads it
        parts["validation"] = validation.dataset_hash
    return parts


@contextlib.contextmanager
def _quiet():
    """NNCF's progress bars and INFO log and ONNX Runtime calibration's prints stay out of the CLI's output."""
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        nncf_logger.setLevel(level)


def write_info(target: Path, info: dict[str, Any]) -> dict[str, Any]:
    (target.parent / INFO_FILE).write_text(json.dumps(info, indent=1, default=str))
    return info


def quantization_info(artifact_path: str | Path) -> dict[str, Any]:
    """What `quantize_*` recorded beside the artifact (method, options, calibration, reverted layers)."""
    path = Path(artifact_path).parent / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


# ------------------------------------------------------------------------------------------- OpenVINO


def _top1_fraction(compiled, items: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, list[float]]:
    """NNCF's validation_fn: top-1 (0-1) over the validation items, and each item's own top-1."""
    per_item, hits, total = [], 0, 0
    for batch, labels in items:
        logits = np.asarray(compiled(batch)[0])
        logits = logits.reshape(logits.shape[0], -1)[: len(labels)]
        ok = int(np.sum(np.argmax(logits, axis=1) == labels))
        per_item.append(ok / len(labels))
        hits, total = hits + ok, total + len(labels)
    return (hits / total if total else 0.0), per_item


class _RevertedOps:
    """Catches the accuracy-control report NNCF prints (it returns only the model), for the names of the
    operations it reverted to floating point."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.quantized_ops: int | None = None

    def __enter__(self):
        from nncf.quantization.algorithms.accuracy_control import algorithm as ac

        self._cls = ac.QuantizationAccuracyRestorer
        self._orig = self._cls.__dict__["_print_report"]
        catch = self

        def report(rep, max_num_iterations):
            catch.names = [n.node_name for n in rep.reverted_operations]
            catch.quantized_ops = rep.num_quantized_operations
            return catch._orig.__func__(rep, max_num_iterations)

        self._cls._print_report = staticmethod(report)
        return self

    def __exit__(self, *exc):
        self._cls._print_report = self._orig
        return False


def quantize_openvino(
    source: str | Path,
    target_xml: str | Path,
    calib: CalibrationSet,
    batch_size: int,
    options: Any = None,
    *,
    max_drop: float | None = None,
    validation: PreparedImages | None = None,
) -> dict[str, Any]:
    """NNCF post-training quantisation of an fp32 model (IR .xml or .onnx) into `target_xml`; `options`:
    the openvino backend's typed options. With `max_drop` (top-1 points), `validation` (labelled
    images) drives nncf.quantize_with_accuracy_control."""
    import nncf
    import openvino as ov

    target = Path(target_xml)
    settings = OpenVINOBackend().quant_settings(options)
    if max_drop is not None and not 0 < max_drop < 100:
        raise UsageError(f"--max-drop {max_drop:g}: give top-1 points between 0 and 100, e.g. 1%")
    if max_drop is not None and (validation is None or validation.labels is None):
        raise UsageError("--max-drop needs labelled validation images: pass --eval DIR")
    model = ov.Core().read_model(str(source))
    batches = list(calib.batches(batch_size))
    subset = settings["subset_size"] or len(batches)
    preset = nncf.QuantizationPreset.MIXED if settings["preset"] == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    kwargs: dict[str, Any] = {
        "preset": preset,
        "subset_size": subset,
        "fast_bias_correction": settings["fast_bias_correction"],
        "target_device": nncf.TargetDevice.CPU,
    }
    if settings["model_type"] == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    info: dict[str, Any] = {
        "method": "nncf",
        "options": {**settings, "max_drop": max_drop},
        "calibration": calib.record(),
        "calibration_batches": len(batches),
        "subset_size": subset,
        "batch_size": batch_size,
        "versions": {"nncf": _version("nncf"), "openvino": _version("openvino")},
    }
    try:
        with _quiet():
            if max_drop is None:
                quantized = nncf.quantize(model, nncf.Dataset(batches), **kwargs)
            else:
                assert validation is not None and validation.labels is not None  # refused above otherwise
                items = [
                    (b, validation.labels[i * batch_size : i * batch_size + valid])
                    for i, (b, valid) in enumerate(validation.batches(batch_size))
                ]
                with _RevertedOps() as reverted:
                    quantized = nncf.quantize_with_accuracy_control(
                        model,
                        nncf.Dataset(batches),
                        nncf.Dataset(items),
                        validation_fn=_top1_fraction,
                        max_drop=max_drop / 100.0,
                        drop_type=nncf.DropType.ABSOLUTE,
                        **kwargs,
                    )
                info["accuracy_control"] = {
                    "max_drop": max_drop,
                    "validation_images": len(validation),
                    "validation_hash": validation.dataset_hash,
                    "quantized_operations": reverted.quantized_ops,
                }
                info["layers_kept_fp32"] = reverted.names
        ov.save_model(quantized, str(target), compress_to_fp16=False)
    except UsageError:
        raise
    except Exception as e:
        raise RunFailed(f"NNCF quantisation failed: {_first_line(e)}") from None
    return write_info(target, info)


# --------------------------------------------------------------------------------------- ONNX Runtime


def _input_name(onnx_path: Path) -> str:
    import onnx

    g = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return next(i.name for i in g.input if i.name not in inits)


def quantize_onnxruntime(
    source_onnx: str | Path,
    target_onnx: str | Path,
    calib: CalibrationSet,
    batch_size: int,
    options: Any = None,
    **_: Any,
) -> dict[str, Any]:
    """ONNX Runtime static quantisation (QDQ) of an fp32 ONNX file into `target_onnx`; `options`: the
    onnxruntime backend's typed options."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = Path(source_onnx), Path(target_onnx)
    settings = OnnxRuntimeBackend().quant_settings(options)
    name = _input_name(source)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rewind()

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {name: batch}

        def rewind(self) -> None:
            self._it = iter(calib.batches(batch_size))

    info: dict[str, Any] = {
        "method": "onnxruntime",
        "format": "QDQ",
        "options": settings,
        "calibration": calib.record(),
        "calibration_batches": calib.num_batches(batch_size),
        "batch_size": batch_size,
        "versions": {"onnxruntime": _version("onnxruntime")},
    }
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[settings["calibration"]]
    extra = {"CalibPercentile": settings["percentile"]} if settings["calibration"] == "percentile" else {}
    with tempfile.TemporaryDirectory(prefix="effbench-ortq-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        try:
            quant_pre_process(str(source), str(pre))
            info["pre_process"] = "symbolic + ONNX shape inference, ORT optimisation"
        except Exception as e:  # symbolic shape inference fails on some graphs: ONNX's own then
            try:
                quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
                info["pre_process"] = f"ONNX shape inference, ORT optimisation (symbolic failed: {_first_line(e)})"
            except Exception as e2:
                pre = source
                info["pre_process"] = f"skipped: {_first_line(e2)}"
        try:
            with _quiet():
                quantize_static(
                    str(pre),
                    str(target),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=settings["per_channel"],
                    reduce_range=settings["reduce_range"],
                    activation_type=qtype[settings["activation_type"]],
                    weight_type=qtype[settings["weight_type"]],
                    calibrate_method=method,
                    calibration_providers=["CPUExecutionProvider"],
                    nodes_to_exclude=[n.strip() for n in settings["keep_fp32"].split(",") if n.strip()],
                    extra_options=extra,
                )
        except Exception as e:
            raise RunFailed(f"ONNX Runtime quantisation failed: {_first_line(e)}") from None
    return write_info(target, info)
