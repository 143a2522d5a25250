"""OpenVINO on the CPU (the session lives in effbench.core). Precision is set explicitly: the CPU
plugin silently runs bf16 otherwise. int8 runs an IR quantised by NNCF post-training quantisation
on a calibration set (effbench.accuracy.quantize)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from effbench.backends.base import Backend, BackendOptions, package_version

# the options that make an int8 artifact (and so its cache key)
QUANT_FIELDS = ("preset", "subset_size", "fast_bias_correction", "model_type")


class OpenVINOOptions(BackendOptions):
    hint: Literal["latency", "throughput", "cumulative_throughput"] | None = Field(
        None, description="PERFORMANCE_HINT (default: latency; throughput in the throughput scenario)"
    )
    streams: int | Literal["auto"] | None = Field(None, description="NUM_STREAMS: a count >= 1, or auto")
    preset: Literal["performance", "mixed"] = Field("performance", description="int8: NNCF quantisation preset")
    subset_size: int | None = Field(None, ge=1, description="int8: calibration samples NNCF uses (default: all)")
    fast_bias_correction: bool = Field(True, description="int8: NNCF fast bias correction (false: full)")
    model_type: Literal["transformer"] | None = Field(None, description="int8: NNCF's scheme for attention models")
    model_cache: bool = Field(True, description="load the compiled model from OpenVINO's model cache (CACHE_DIR)")

    @field_validator("hint", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.lower() if isinstance(v, str) else v

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, v):
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str) and v.strip().isdigit() and int(v) >= 1:
            return int(v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            return v
        raise ValueError("expected a stream count >= 1, or auto")


class OpenVINOBackend(Backend):
    name = "openvino"
    aliases = ("ov",)
    artifact_format = "openvino"
    precisions = ("fp32", "bf16", "fp16", "int8")
    description = "OpenVINO runtime, CPU plugin"
    Options = OpenVINOOptions
    core_runtime = "openvino"
    packages = ("openvino", "nncf")
    preload = ("openvino",)
    exporter = "effbench.export.pipeline:openvino_artifact"
    quantizer = "effbench.accuracy.quantize:quantize_openvino"
    int8_method = "nncf"
    int8_coverage = "effbench.accuracy.int8_coverage:coverage_openvino"
    accuracy_aware_int8 = True
    reads_runtime_graph_for_int8 = True

    def version(self):
        return package_version("openvino")

    def quant_settings(self, options):
        opts = options if options is not None else self.parse_options({})
        return {k: getattr(opts, k) for k in QUANT_FIELDS}

    def check_precision(self, precision, device="cpu"):
        if precision in ("bf16", "fp16"):
            import openvino as ov

            caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            want = {"bf16": "BF16", "fp16": "FP16"}[precision]
            if want not in caps:
                return f"OpenVINO's CPU plugin has no {precision} on this CPU (capabilities: {', '.join(caps)})"
        if precision == "int8" and package_version("nncf") is None:
            return "int8 on openvino quantises with NNCF, which is not installed (pip install nncf)"
        return super().check_precision(precision, device)

    def runtime_options(self, options, cell) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if options.hint:
            out["hint"] = options.hint.upper()
        if options.streams is not None:
            out["streams"] = str(options.streams).upper()
        out["model_cache"] = options.model_cache
        return out

    def map_profile(self, layers, graph, runtime_graph):
        from effbench.backends.openvino_profile import RuntimeOp, map_openvino
        from effbench.backends.profiling import map_by_name

        ops = [
            RuntimeOp(
                op["name"],
                op["layer_type"],
                list(op["original_names"]),
                list(op["inputs"]),
                int(op.get("exec_order", -1)),
            )
            for op in (runtime_graph or [])
        ]
        if not ops:
            mapping = map_by_name(self.name, layers, graph)
            mapping.warnings.append("OpenVINO runtime model unavailable: layers mapped by their own names only")
            return mapping
        return map_openvino(layers, graph, ops)
