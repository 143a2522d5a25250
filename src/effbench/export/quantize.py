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
import dataclasses
import io
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from effbench.accuracy.calibration import CalibrationSet
from effbench.accuracy.data import PreparedImages
from effbench.errors import RunFailed, UsageError

INFO_FILE = "quantization.json"
OV_PRESETS = ("performance", "mixed")
OV_MODEL_TYPES = ("transformer",)
ORT_METHODS = ("minmax", "entropy", "percentile")
ORT_TYPES = ("int8", "uint8")


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in (str(e).strip() or type(e).__name__).splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


@dataclass(frozen=True)
class OpenVINOQuantOptions:
    preset: str = "performance"  # NNCF's default for CNNs: symmetric weights and activations
    subset_size: int | None = None  # calibration batches NNCF reads; None: all of them
    fast_bias_correction: bool = True
    model_type: str | None = None  # "transformer": NNCF's scheme for attention models
    max_drop: float | None = None  # accuracy-aware: the most top-1 points (0-100) it may lose

    def __post_init__(self) -> None:
        if self.preset not in OV_PRESETS:
            raise UsageError(f"openvino preset {self.preset!r}: use one of {', '.join(OV_PRESETS)}")
        if self.model_type not in (None, *OV_MODEL_TYPES):
            raise UsageError(f"openvino model_type {self.model_type!r}: use {', '.join(OV_MODEL_TYPES)} or leave "
                             "it out")
        if self.subset_size is not None and self.subset_size < 1:
            raise UsageError(f"openvino subset_size {self.subset_size}: give a positive number of batches")
        if self.max_drop is not None and not 0 < self.max_drop < 100:
            raise UsageError(f"--max-drop {self.max_drop:g}: give top-1 points between 0 and 100, e.g. 1%")


def cpu_flags() -> set[str]:
    """All of the CPU's instruction-set flags (Linux /proc/cpuinfo; empty elsewhere)."""
    from effbench.core.fingerprint import cpuinfo

    return set((cpuinfo().get("flags") or "").split())


def has_vnni(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


@dataclass(frozen=True)
class OrtQuantOptions:
    calibrate_method: str = "minmax"
    per_channel: bool = True
    # U8S8: with S8 activations ONNX Runtime 1.32's CPU provider left 13 depthwise and 20 other convolutions
    # of mobilenetv3_large_100 unfused (fp32 between Q/DQ pairs, 37% of MACs int8, 3x slower than fp32);
    # with U8 activations all of them ran QLinearConv (benchmarks/int8_speedup.py)
    activation_type: str = "uint8"
    weight_type: str = "int8"
    # 7-bit weights against VPMADDUBSW's 16-bit saturation of u8*s8 pairs on CPUs without VNNI, as ONNX
    # Runtime advises; None: on exactly when this CPU lacks VNNI (resolved before the cache key is made)
    reduce_range: bool | None = None
    percentile: float = 99.999  # the percentile method's cut-off

    def resolved(self) -> "OrtQuantOptions":
        return self if self.reduce_range is not None else dataclasses.replace(self, reduce_range=not has_vnni())

    def __post_init__(self) -> None:
        if self.calibrate_method not in ORT_METHODS:
            raise UsageError(f"onnxruntime calibration {self.calibrate_method!r}: use one of {', '.join(ORT_METHODS)}")
        for name in ("activation_type", "weight_type"):
            if getattr(self, name) not in ORT_TYPES:
                raise UsageError(f"onnxruntime {name} {getattr(self, name)!r}: use one of {', '.join(ORT_TYPES)}")
        if not 50 < self.percentile <= 100:
            raise UsageError(f"onnxruntime percentile {self.percentile:g}: give a value in (50, 100], e.g. 99.999")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(method: str, name: str, kind: str, value: Any) -> Any:
    """A string from `--opt key=value` (or a YAML scalar) as the option's type."""
    if not isinstance(value, str) or kind == "str" or kind.startswith("str"):
        return value
    text = value.strip().lower()
    if kind == "bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise UsageError(f"{method} int8 option {name}={value!r}: write 1 or 0 (true or false)")
    if text in ("none", "null", ""):
        return None
    try:
        return int(text) if kind.startswith("int") else float(text.rstrip("%"))
    except ValueError:
        raise UsageError(f"{method} int8 option {name}={value!r} is not a number") from None


def quant_options(method: str, raw: dict[str, Any] | None = None):
    """Typed options ("nncf" | "onnxruntime") from a dict (`--opt key=value`, sweep keys): values are
    coerced to the option's type; an unknown key or a bad value is a one-line UsageError."""
    cls = {"nncf": OpenVINOQuantOptions, "onnxruntime": OrtQuantOptions}[method]
    raw = dict(raw or {})
    kinds = {f.name: str(f.type).replace(" | None", "") for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        raise UsageError(f"unknown int8 option(s) {', '.join(unknown)} for {method}: known are "
                         f"{', '.join(sorted(kinds))}")
    return cls(**{k: _coerce(method, k, kinds[k], v) for k, v in raw.items()})


def quantization_parts(method: str, calib: CalibrationSet, options, source_key: str,
                       validation: PreparedImages | None = None) -> dict[str, Any]:
    """Cache-key parts of a quantised artifact: its fp32 source artifact's key, the calibration set's
    hash, the options, the quantiser's version (and the validation set of an accuracy-aware one)."""
    options = options.resolved() if hasattr(options, "resolved") else options
    parts = {"source": source_key, "quantize": method, "calibration": calib.hash, "options": asdict(options),
             "quantizer": _version("nncf" if method == "nncf" else "onnxruntime"),
             "runtime": _version("openvino" if method == "nncf" else "onnxruntime")}
    if validation is not None and getattr(options, "max_drop", None) is not None:  # only accuracy control reads it
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


def _write_info(target: Path, info: dict[str, Any]) -> dict[str, Any]:
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
        logits = logits.reshape(logits.shape[0], -1)[:len(labels)]
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


def quantize_openvino(source: str | Path, target_xml: str | Path, calib: CalibrationSet, batch_size: int,
                      options: OpenVINOQuantOptions = OpenVINOQuantOptions(), *,
                      validation: PreparedImages | None = None) -> dict[str, Any]:
    """NNCF post-training quantisation of an fp32 model (IR .xml or .onnx) into `target_xml`.

    With options.max_drop, `validation` (labelled images) drives nncf.quantize_with_accuracy_control."""
    import nncf
    import openvino as ov

    target = Path(target_xml)
    if options.max_drop is not None and (validation is None or validation.labels is None):
        raise UsageError("--max-drop needs labelled validation images: pass --eval DIR")
    model = ov.Core().read_model(str(source))
    batches = list(calib.batches(batch_size))
    subset = options.subset_size or len(batches)
    kwargs: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.MIXED if options.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
        "subset_size": subset, "fast_bias_correction": options.fast_bias_correction,
        "target_device": nncf.TargetDevice.CPU}
    if options.model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    info: dict[str, Any] = {"method": "nncf", "options": asdict(options), "calibration": calib.record(),
                            "calibration_batches": len(batches), "subset_size": subset, "batch_size": batch_size,
                            "versions": {"nncf": _version("nncf"), "openvino": _version("openvino")}}
    try:
        with _quiet():
            if options.max_drop is None:
                quantized = nncf.quantize(model, nncf.Dataset(batches), **kwargs)
            else:
                items = [(b, validation.labels[i * batch_size:i * batch_size + valid])
                         for i, (b, valid) in enumerate(validation.batches(batch_size))]
                with _RevertedOps() as reverted:
                    quantized = nncf.quantize_with_accuracy_control(
                        model, nncf.Dataset(batches), nncf.Dataset(items), validation_fn=_top1_fraction,
                        max_drop=options.max_drop / 100.0, drop_type=nncf.DropType.ABSOLUTE, **kwargs)
                info["accuracy_control"] = {"max_drop": options.max_drop, "validation_images": len(validation),
                                            "validation_hash": validation.dataset_hash,
                                            "quantized_operations": reverted.quantized_ops}
                info["layers_kept_fp32"] = reverted.names
        ov.save_model(quantized, str(target), compress_to_fp16=False)
    except UsageError:
        raise
    except Exception as e:
        raise RunFailed(f"NNCF quantisation failed: {_first_line(e)}") from None
    return _write_info(target, info)


# --------------------------------------------------------------------------------------- ONNX Runtime


def _input_name(onnx_path: Path) -> str:
    import onnx

    g = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return next(i.name for i in g.input if i.name not in inits)


def quantize_onnxruntime(source_onnx: str | Path, target_onnx: str | Path, calib: CalibrationSet, batch_size: int,
                         options: OrtQuantOptions = OrtQuantOptions()) -> dict[str, Any]:
    """ONNX Runtime static quantisation (QDQ) of an fp32 ONNX file into `target_onnx`."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = Path(source_onnx), Path(target_onnx)
    options = options.resolved()
    name = _input_name(source)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rewind()

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {name: batch}

        def rewind(self) -> None:
            self._it = iter(calib.batches(batch_size))

    info: dict[str, Any] = {"method": "onnxruntime", "format": "QDQ", "options": asdict(options),
                            "calibration": calib.record(), "calibration_batches": calib.num_batches(batch_size),
                            "batch_size": batch_size, "versions": {"onnxruntime": _version("onnxruntime")}}
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options.calibrate_method]
    extra = {"CalibPercentile": options.percentile} if options.calibrate_method == "percentile" else {}
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
                quantize_static(str(pre), str(target), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=options.per_channel, reduce_range=options.reduce_range,
                                activation_type=qtype[options.activation_type],
                                weight_type=qtype[options.weight_type], calibrate_method=method,
                                calibration_providers=["CPUExecutionProvider"], extra_options=extra)
        except Exception as e:
            raise RunFailed(f"ONNX Runtime quantisation failed: {_first_line(e)}") from None
    return _write_info(target, info)
