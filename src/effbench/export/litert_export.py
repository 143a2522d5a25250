"""torch -> LiteRT (.tflite) with litert-torch, and its int8 form with ai-edge-quantizer
(recipe static_wi8_ai8: int8 weights and activations, calibrated on the --calib images). The litert
backend names both (Backend.exporter, Backend.quantizer)."""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable

import numpy as np

from effbench.errors import RunFailed, UsageError
from effbench.export.cache import Artifact, get_or_build
from effbench.export.pipeline import ModelSource, base_parts, package_versions

PACKAGES = ("litert-torch", "ai-edge-litert", "torch", "timm")
_OP = re.compile(r"(aten[.:]+\w+(?:\.\w+)?|torch\.ops\.\w+\.\w+)")


def refused(e: BaseException) -> str:
    """One line: the operator the converter refused when its message names one, else its first line."""
    text = str(e).strip() or type(e).__name__
    op = _OP.search(text)
    first = next((ln for ln in text.splitlines() if ln.strip()), type(e).__name__)[:200]
    return f"operator {op.group(1)} ({first})" if op else first


@contextlib.contextmanager
def _quiet():
    """litert-torch's progress lines and the converter's C++ log (written to file descriptors 1 and 2,
    where redirecting sys.stdout cannot reach) stay out of the CLI's output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("litert_torch").setLevel(logging.ERROR)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` in a fresh (spawned) process: litert-torch and ai-edge-quantizer import JAX,
    whose threads make any later fork of this process unsafe, and a converter that crashes takes only
    that process down."""
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(fn, *args).result()
    except BrokenProcessPool:
        raise RunFailed(f"the LiteRT converter process died ({getattr(fn, '__name__', fn)})") from None


def _convert(src: ModelSource, input_shape: tuple[int, ...], target: str) -> int:
    import torch

    from effbench.models.loaders import count_params

    module = src.module().eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32))
    try:
        with _quiet(), torch.no_grad():
            import litert_torch

            litert_torch.convert(module, (x,)).export(target)
    except Exception as e:
        raise RunFailed(f"LiteRT conversion of {src.spec.id} failed: {refused(e)}") from None
    return count_params(module)


def tflite_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", **_: Any) -> Artifact:
    if src.spec.kind == "onnx":
        raise UsageError(
            f"{src.spec.id} is an ONNX file: LiteRT converts PyTorch models (give a timm name or a factory, "
            "or use --backend ort / ov for the ONNX file)"
        )
    parts = {**base_parts(src, input_shape), "format": "tflite", **package_versions(PACKAGES)}
    source = ModelSource(src.spec, src.pretrained, src.seed)  # unbuilt: the child builds the module
    return get_or_build(
        "tflite", parts, "model.tflite", lambda t: {"params": isolated(_convert, source, input_shape, str(t))}
    )


def _quantize(source: str, target: str, batches: list[np.ndarray]) -> None:
    with _quiet():
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import quantizer, recipe

    signatures = Interpreter(model_path=source).get_signature_list()
    signature = next(iter(signatures))
    name = signatures[signature]["inputs"][0]
    try:
        with _quiet():
            qt = quantizer.Quantizer(source)
            qt.load_quantization_recipe(recipe.static_wi8_ai8())
            stats = qt.calibrate({signature: [{name: b} for b in batches]})
            qt.quantize(stats).export_model(target, overwrite=True)
    except Exception as e:
        raise RunFailed(f"LiteRT int8 quantisation failed: {refused(e)}") from None


def quantize_tflite(
    source: str | Path, target: str | Path, calib: Any, batch_size: int, options: Any = None, **_: Any
) -> dict[str, Any]:
    """ai-edge-quantizer's static int8 (weights and activations) of an fp32 .tflite into `target`;
    `calib`: an accuracy.calibration.CalibrationSet."""
    batches = list(calib.batches(batch_size))
    isolated(_quantize, str(source), str(target), batches)
    return {
        "method": "ai-edge-quantizer",
        "recipe": "static_wi8_ai8",
        "calibration": calib.record(),
        "calibration_batches": len(batches),
        "batch_size": batch_size,
        "versions": package_versions(("ai-edge-quantizer", "ai-edge-litert")),
    }
