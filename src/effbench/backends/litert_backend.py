"""LiteRT (TFLite) on the CPU: XNNPACK by default, the reference kernels with `--opt delegate=none`
(the session lives in effbench.core.runtimes.litert, so the ssh agent can run it too).

The backend owns its format: litert-torch converts the PyTorch model to .tflite and ai-edge-quantizer
makes its int8 form from the --calib images (effbench.export.litert_export). Every result carries the
op list and where each op ran (runtime.placement: XNNPACK or reference kernels, and the MACs share).
"""

from __future__ import annotations

from typing import Any

from effbench.backends.base import Backend, DelegateOptions, package_version


class LiteRTBackend(Backend):
    name = "litert"
    aliases = ("tflite",)
    artifact_format = "tflite"
    precisions = ("fp32", "int8")
    description = "LiteRT (TFLite) on the CPU: XNNPACK delegate (--opt delegate=none: reference kernels)"
    Options = DelegateOptions
    core_runtime = "litert"
    packages = ("ai-edge-litert", "litert-torch", "ai-edge-quantizer")
    preload = ("ai_edge_litert.interpreter",)
    exporter = "effbench.export.litert_export:tflite_artifact"
    quantizer = "effbench.export.litert_export:quantize_tflite"
    int8_method = "ai-edge-quantizer"

    def version(self):
        return package_version("ai-edge-litert")

    def unavailable_reason(self, device="cpu"):
        reason = super().unavailable_reason(device)
        if reason is None and package_version("litert-torch") is None:
            return "litert-torch not installed: it converts PyTorch models to .tflite (pip install litert-torch)"
        return reason

    def check_precision(self, precision, device="cpu"):
        if precision == "int8" and package_version("ai-edge-quantizer") is None:
            return "int8 on litert needs ai-edge-quantizer, which is not installed (pip install ai-edge-quantizer)"
        return super().check_precision(precision, device)

    def quant_settings(self, options):
        return {"recipe": "static_wi8_ai8"}

    def runtime_options(self, options, cell) -> dict[str, Any]:
        return {"delegate": options.delegate}
