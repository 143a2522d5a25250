"""ExecuTorch on the CPU: the XNNPACK partitioner by default, ExecuTorch's portable kernels with
`--opt delegate=none` (the session lives in effbench.core.runtimes.executorch).

The backend owns its format: torch.export + to_edge_transform_and_lower make the .pte, and the
XNNPACK PT2E quantiser its int8 form from the --calib images (effbench.export.executorch_export).
`bench profile --backend executorch` reads per-op times from ETDump with ExecuTorch's Inspector.
"""

from __future__ import annotations

from typing import Any

from effbench.backends.base import Backend, DelegateOptions, package_version


class ExecuTorchBackend(Backend):
    name = "executorch"
    aliases = ("et",)
    artifact_format = "pte"
    precisions = ("fp32", "int8")
    description = "ExecuTorch on the CPU: XNNPACK partitioner (--opt delegate=none: portable kernels)"
    Options = DelegateOptions
    core_runtime = "executorch"
    packages = ("executorch", "torchao")
    # nothing preloaded: importing the runtime in the fork server would start its thread pool before the
    # worker sizes it (core.runtimes.executorch)
    exporter = "effbench.export.executorch_export:pte_artifact"
    quantizer = "effbench.export.executorch_export:quantize_pte"
    int8_method = "xnnpack-pt2e"
    maps_by_op_type = True

    def version(self):
        return package_version("executorch")

    def quant_settings(self, options):
        return {
            "scheme": "symmetric, per-channel",
            "delegate": getattr(options, "delegate", "xnnpack"),
            "constant_pad": "portable kernels",  # XNNPACK refuses int8 pads (executorch_export._export)
        }

    def runtime_options(self, options, cell) -> dict[str, Any]:
        return {"delegate": options.delegate}

    def kernel_op_type(self, layer_name: str) -> str | None:
        """XNNPACK kernel names ("Convolution (NHWC, F32) IGEMM #1") and portable op names -> ONNX op types."""
        name = layer_name.lower().replace(" ", "_")
        for key, op in KERNEL_OPS:
            if key in name:
                return op
        return None


# first match wins: "fully_connected ... gemm" is a Gemm, not a MatMul
KERNEL_OPS = (
    ("conv", "Conv"),
    ("fully_connected", "Gemm"),
    ("linear", "Gemm"),
    ("batch_matrix", "MatMul"),
    ("bmm", "MatMul"),
    ("mm", "MatMul"),
    ("mean", "GlobalAveragePool"),
    ("avg", "AveragePool"),
    ("max_pool", "MaxPool"),
    ("transpose", "Transpose"),
    ("permute", "Transpose"),
    ("reshape", "Reshape"),
    ("view", "Reshape"),
    ("add", "Add"),
    ("mul", "Mul"),
    ("softmax", "Softmax"),
    ("sigmoid", "Sigmoid"),
    ("hardswish", "HardSwish"),
    ("clamp", "Clip"),
    ("relu", "Relu"),
    ("concat", "Concat"),
)
