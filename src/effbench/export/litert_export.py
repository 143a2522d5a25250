"""torch -> LiteRT (.tflite) with litert-torch, and its int8 form with ai-edge-quantizer
(recipe static_wi8_ai8: int8 weights and activations, calibrated on the --calib images). The litert
backend names both (Backend.exporter, Backend.quantizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from effbench.errors import RunFailed
from effbench.export.cache import Artifact, get_or_build
from effbench.export.isolated import isolated, quiet, refused
from effbench.export.pipeline import ModelSource, base_parts, package_versions, require_torch_model

PACKAGES = ("litert-torch", "ai-edge-litert", "torch", "timm")


def _convert(src: ModelSource, input_shape: tuple[int, ...], target: str) -> int:
    import torch

    from effbench.models.loaders import count_params

    module = src.module().eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32))
    try:
        with quiet(), torch.no_grad():
            import litert_torch

            litert_torch.convert(module, (x,)).export(target)
    except Exception as e:
        raise RunFailed(f"LiteRT conversion of {src.spec.id} failed: {refused(e)}") from None
    return count_params(module)


def tflite_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", **_: Any) -> Artifact:
    require_torch_model(src, "LiteRT")
    parts = {**base_parts(src, input_shape), "format": "tflite", **package_versions(PACKAGES)}
    source = ModelSource(src.spec, src.pretrained, src.seed)  # unbuilt: the child builds the module
    return get_or_build(
        "tflite", parts, "model.tflite", lambda t: {"params": isolated(_convert, source, input_shape, str(t))}
    )


def _quantize(source: str, target: str, batches: list[np.ndarray]) -> None:
    with quiet():
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import quantizer, recipe

    signatures = Interpreter(model_path=source).get_signature_list()
    signature = next(iter(signatures))
    name = signatures[signature]["inputs"][0]
    try:
        with quiet():
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
