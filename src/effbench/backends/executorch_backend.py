"""ExecuTorch on the CPU: the XNNPACK partitioner by default, ExecuTorch's portable kernels with
`--opt delegate=none` (the session lives in effbench.core.runtimes.executorch).

The backend owns its format: torch.export + to_edge_transform_and_lower make the .pte, and the
XNNPACK PT2E quantiser its int8 form from the --calib images (effbench.export.executorch_export).
`bench profile --backend executorch` reads per-kernel times from ETDump with ExecuTorch's Inspector and maps
them through the export's ETRecord onto the ONNX graph's nodes (backends.executorch_profile).
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

    def map_profile(self, layers, graph, runtime_graph):
        from effbench.backends.executorch_profile import map_executorch

        return map_executorch(layers, graph, runtime_graph)
