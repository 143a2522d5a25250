"""fp32 and int8 on OpenVINO and ONNX Runtime, evaluated on the very core sessions that would be timed.

The trained digits CNN is exported once; int8 artifacts are built through the artifact cache with the
calibration set's hash in the key, exactly as the runner will build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from effbench.accuracy import int8_coverage as cov
from effbench.accuracy import quantize as q
from effbench.accuracy.calibration import GENERATED_WARNING, CalibrationSet, calibration_set
from effbench.accuracy.data import PreparedImages, find_images, prepare_images
from effbench.accuracy.evaluate import (
    Predictions,
    accuracy_record,
    cached_reference,
    evaluate,
    evaluate_onnx,
    evaluate_torch,
    reference_parts,
)
from effbench.backends.registry import get_backend
from effbench.core.runtimes import open_session
from effbench.core.settings import MeasureSettings
from effbench.export.cache import get_or_build

from .conftest import SIZE, digits_preprocess

BATCH = 8  # 500 images: 62 full batches and one padded to 8 (4 real images)
CALIB = 128


@dataclass
class Built:
    onnx: Path
    ir: Path
    key: str  # the fp32 ONNX artifact's cache key
    val: PreparedImages
    reference: Predictions  # PyTorch on the same prepared images


def _open(runtime: str, path: Path, precision: str = "fp32"):
    settings = MeasureSettings(runtime=runtime, input_shape=[BATCH, 3, SIZE, SIZE], precision=precision, threads=1)
    return open_session(runtime, str(path), settings)


def _eval(runtime: str, path: Path, images: PreparedImages, precision: str = "fp32"):
    session = _open(runtime, path, precision)
    try:
        return evaluate(session, images, batch_size=BATCH), session.precision_ran, session.runtime_graph()
    finally:
        session.close()


@pytest.fixture(scope="session")
def built(digits, trained) -> Built:
    from effbench.export.onnx_export import export_torch_to_onnx
    from effbench.export.openvino_export import onnx_to_ir

    onnx_art = get_or_build(
        "onnx",
        {"model": "digits_cnn", "weights": str(trained.weights), "batch": BATCH},
        "model.onnx",
        lambda t: export_torch_to_onnx(trained.module, (BATCH, 3, SIZE, SIZE), t),
    )
    ir_art = get_or_build("openvino", {"onnx": onnx_art.key}, "model.xml", lambda t: onnx_to_ir(onnx_art.path, t))
    val = prepare_images(find_images(digits.val, num_classes=10), digits_preprocess(BATCH))
    return Built(onnx_art.path, ir_art.path, onnx_art.key, val, evaluate_torch(trained.module, val))


def torch_own_evaluation(module, folder: Path) -> np.ndarray:
    """The PyTorch way, independent of effbench: torchvision's ImageFolder with timm's eval transform."""
    import torch
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    transform = create_transform(input_size=(3, SIZE, SIZE), crop_pct=1.0, interpolation="bilinear")
    ds = ImageFolder(str(folder), transform=transform)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        pred = module(x).argmax(1).numpy()
    return pred == np.asarray(ds.targets)


@pytest.fixture(scope="session")
def own(digits, trained) -> np.ndarray:
    return torch_own_evaluation(trained.module, digits.val)


def test_model_trains_well_above_chance(trained, built):
    assert trained.train_accuracy > 0.9
    assert np.mean(built.reference.correct(built.val.labels)) > 0.85  # held-out images; chance is 0.1


@pytest.mark.parametrize("runtime,artifact", [("onnxruntime", "onnx"), ("openvino", "ir")])
def test_fp32_top1_matches_pytorch_own_evaluation(built, own, runtime, artifact):
    pred, ran, _ = _eval(runtime, getattr(built, artifact), built.val)
    rec = accuracy_record(pred, built.val, reference=built.reference, reference_info={"runtime": "torch"})
    assert rec["images"] == own.size == 500
    assert abs(rec["top1"] * own.size / 100 - own.sum()) <= 1  # within one image
    lo, hi = rec["top1_ci"]
    assert lo < rec["top1"] < hi and hi - lo < 8
    assert rec["agreement"] >= 99.8 and abs(rec["drop"]) <= 0.2
    assert ran == "fp32"


def test_onnx_reference_equals_the_torch_reference(built):
    ort_ref = evaluate_onnx(built.onnx, built.val, batch_size=BATCH)
    assert np.mean(ort_ref.top1 == built.reference.top1) >= 0.998


@pytest.fixture(scope="session")
def calib(digits):
    return calibration_set(digits.train, digits_preprocess(BATCH), size=CALIB)


def _opts(fmt: str, **raw):
    return get_backend("openvino" if fmt == "openvino" else "onnxruntime").parse_options(raw)


def _int8(fmt: str, built: Built, calib, options, validation=None, max_drop=None):
    source = built.ir if fmt == "openvino" else built.onnx
    filename = "model.xml" if fmt == "openvino" else "model.onnx"
    parts = q.quantization_parts(
        get_backend("openvino" if fmt == "openvino" else "onnxruntime"), calib, options, built.key, validation, max_drop
    )

    def build(target: Path) -> None:
        if fmt == "openvino":
            q.quantize_openvino(source, target, calib, BATCH, options, max_drop=max_drop, validation=validation)
        else:
            q.quantize_onnxruntime(source, target, calib, BATCH, options)

    return get_or_build(fmt, parts, filename, build)


@pytest.mark.parametrize("fmt,runtime", [("openvino", "openvino"), ("onnx", "onnxruntime")])
def test_int8_drop_interval_macs_share_and_calibration_cache(built, calib, fmt, runtime):
    options = _opts(fmt)
    art = _int8(fmt, built, calib, options)
    again = _int8(fmt, built, calib, options)
    assert not art.cached and again.cached and again.path == art.path  # same calibration hash: a cache hit
    info = q.quantization_info(art.path)
    assert info["calibration"]["hash"] == calib.hash and info["calibration"]["images"] == CALIB
    assert info["calibration"]["source"] == "dir" and "warning" not in info["calibration"]

    pred, ran, graph = _eval(runtime, art.path, built.val, "int8")
    assert ran == "int8"
    rec = accuracy_record(pred, built.val, reference=built.reference, reference_info={"runtime": "torch"})
    lo, hi = rec["drop_ci"]
    assert lo <= rec["drop"] <= hi and hi - lo < 6
    assert rec["drop"] == pytest.approx(rec["reference"]["top1"] - rec["top1"], abs=1e-3)
    assert 0 <= rec["mcnemar_p"] <= 1
    assert rec["top1"] > 80  # int8 with real calibration keeps the model working

    if runtime == "openvino":
        names, analysed = cov.int8_layers_openvino(graph), built.onnx
    else:
        names, analysed = cov.int8_nodes_onnxruntime(art.path), art.path
    share = cov.int8_macs_share(analysed, names)
    assert share["int8_nodes"] >= 3 and share["int8_macs_share"] > 0.9


def test_other_calibration_images_make_another_artifact(digits, built, calib):
    other = calibration_set(digits.train, digits_preprocess(BATCH), size=CALIB // 2)
    assert other.hash != calib.hash
    a = _int8("onnx", built, calib, _opts("onnx"))
    b = _int8("onnx", built, other, _opts("onnx"))
    assert a.key != b.key and not b.cached


def test_generated_calibration_carries_its_warning(built):
    gen = calibration_set(None, digits_preprocess(BATCH), size=16)
    assert gen.source == "generated" and gen.warning == GENERATED_WARNING
    art = _int8("onnx", built, gen, _opts("onnx", calibration="percentile"))
    info = q.quantization_info(art.path)
    assert info["calibration"]["warning"] == GENERATED_WARNING
    assert "accuracy is not" in info["calibration"]["warning"]
    pred, ran, _ = _eval("onnxruntime", art.path, built.val, "int8")
    assert ran == "int8" and len(pred.topk) == len(built.val)


def test_accuracy_aware_openvino_records_the_layers_kept_in_fp32(digits, trained, built):
    """Calibrated on flat grey images only, int8 clips the digits: accuracy control must revert
    layers to floating point until the drop on the validation images is within max_drop."""
    pre = digits_preprocess(BATCH)
    grey = PreparedImages(np.full((32, SIZE, SIZE, 3), 118, np.uint8), None, [], "grey-32", pre)
    bad_calib = CalibrationSet(grey, "generated")
    val = prepare_images(find_images(digits.val, num_classes=10), pre, limit=200)
    plain = _int8("openvino", built, bad_calib, _opts("openvino"))
    ref = evaluate_torch(trained.module, val)
    plain_drop = accuracy_record(_eval("openvino", plain.path, val, "int8")[0], val, reference=ref)["drop"]
    assert plain_drop > 1.0, "the bad calibration should cost accuracy, or this test tests nothing"

    art = _int8("openvino", built, bad_calib, _opts("openvino"), validation=val, max_drop=1.0)
    info = q.quantization_info(art.path)
    assert info["accuracy_control"]["max_drop"] == 1.0 and info["accuracy_control"]["validation_images"] == 200
    kept = info["layers_kept_fp32"]
    assert kept, "accuracy control reverted nothing"
    pred, _, graph = _eval("openvino", art.path, val, "int8")
    rec = accuracy_record(pred, val, reference=ref)
    assert rec["drop"] <= 1.0 + 100 / len(val)  # NNCF validated on these images (its own compilation: one image)
    int8 = cov.int8_layers_openvino(graph)
    assert not set(kept) & set(int8)  # a layer kept in fp32 did not run int8
    assert cov.int8_macs_share(built.onnx, kept)["int8_nodes"] >= 1  # the names map onto the ONNX graph


def test_reference_predictions_are_cached(built, trained):
    parts = reference_parts(built.key, built.val, "torch")
    calls = []

    def compute():
        calls.append(1)
        return evaluate_torch(trained.module, built.val)

    first, cached1 = cached_reference(parts, compute)
    second, cached2 = cached_reference(parts, compute)
    assert (not cached1, cached2, len(calls)) == (True, True, 1)
    assert np.array_equal(first.topk, second.topk) and np.array_equal(first.topk, built.reference.topk)
