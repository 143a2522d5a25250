"""ONNX Runtime: full graph optimisation, IOBinding (the session lives in effbench.core).

CPU execution provider by default. With onnxruntime-gpu and `--device cuda[:N]`, `--opt ep=cuda`
(the default there) or `--opt ep=tensorrt` picks the GPU provider; inputs and outputs are then
bound on the device, so no host copy is timed. int8 runs a QDQ model quantised with
onnxruntime.quantization.quantize_static on a calibration set (effbench.accuracy.quantize).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, package_version
from effbench.errors import UsageError

# the options that make an int8 artifact (and so its cache key)
QUANT_FIELDS = (
    "calibration",
    "per_channel",
    "activation_type",
    "weight_type",
    "reduce_range",
    "percentile",
    "keep_fp32",
)
EPS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


class OnnxRuntimeOptions(BackendOptions):
    ep: Literal["cpu", "cuda", "tensorrt"] | None = Field(
        None, description="execution provider (default: cpu; cuda on --device cuda)"
    )
    workspace_mb: float | None = Field(None, gt=0, description="TensorRT provider workspace limit")
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="int8: calibration method of quantize_static"
    )
    per_channel: bool = Field(True, description="int8: per-channel weight scales")
    # U8S8 by default: with S8 activations ONNX Runtime 1.32's CPU provider left 13 depthwise and 20 other
    # convolutions of mobilenetv3_large_100 unfused (fp32 between Q/DQ pairs, 37% of MACs int8, 3x slower than
    # fp32); with U8 activations all of them ran QLinearConv (benchmarks/int8_speedup.py)
    activation_type: Literal["int8", "uint8"] = Field("uint8", description="int8: activation type")
    weight_type: Literal["int8", "uint8"] = Field("int8", description="int8: weight type")
    reduce_range: bool | None = Field(
        None, description="int8: 7-bit weights (default: on exactly when the CPU lacks VNNI, as ORT advises)"
    )
    percentile: float = Field(99.999, gt=50, le=100, description="int8: the percentile calibration's cut-off")
    keep_fp32: str = Field("", description="int8: ONNX node names (comma-separated) left unquantised, in fp32")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    aliases = ("ort",)
    artifact_format = "onnx"
    precisions = ("fp32", "int8")  # fp16 too on cuda with --opt ep=tensorrt
    devices = ("cpu", "cuda")
    description = "ONNX Runtime: CPU provider; on cuda (onnxruntime-gpu) --opt ep=cuda|tensorrt"
    Options = OnnxRuntimeOptions
    core_runtime = "onnxruntime"
    packages = ("onnxruntime", "onnxruntime-gpu")
    preload = ("onnxruntime",)
    exporter = "effbench.export.pipeline:onnx_artifact"
    quantizer = "effbench.accuracy.quantize:quantize_onnxruntime"
    int8_method = "onnxruntime"
    int8_coverage = "effbench.accuracy.int8_coverage:coverage_onnxruntime"

    def version(self):
        return package_version("onnxruntime") or package_version("onnxruntime-gpu")

    def unavailable_reason(self, device="cpu"):
        if device.split(":")[0] != "cuda" or self.version() is None:
            return super().unavailable_reason(device)
        reason = _provider_missing("cuda")
        if reason:
            return reason
        from effbench.backends.cuda_util import cuda_unavailable_reason

        return cuda_unavailable_reason(device)

    def quant_settings(self, options):
        opts = options if options is not None else self.parse_options({})
        out = {k: getattr(opts, k) for k in QUANT_FIELDS}
        if out["reduce_range"] is None:
            # 7-bit weights against VPMADDUBSW's 16-bit saturation of u8*s8 pairs on CPUs without VNNI
            out["reduce_range"] = not has_vnni()
        return out

    def check_precision(self, precision, device="cpu"):
        on_cuda = device.split(":")[0] == "cuda"
        if on_cuda and precision == "fp16":
            return None  # with the TensorRT execution provider (checked with the options)
        if on_cuda and precision == "int8":
            return "int8 on onnxruntime runs on the CPU provider here (use --device cpu, or --backend tensorrt)"
        return super().check_precision(precision, device)

    def runtime_options(self, options, cell) -> dict[str, Any]:
        device, precision = cell.device, cell.precision
        on_cuda = device.split(":")[0] == "cuda"
        ep = options.ep or ("cuda" if on_cuda else "cpu")
        if ep == "cpu":
            if on_cuda:
                raise UsageError("--opt ep=cpu with --device cuda: use --device cpu for the CPU provider")
            return {"providers": ["CPUExecutionProvider"], "device_id": None}
        if not on_cuda:
            raise UsageError(f"--opt ep={ep} needs --device cuda (or cuda:N)")
        reason = _provider_missing(ep)
        if reason:
            raise UsageError(reason)
        if precision != "fp32" and ep != "tensorrt":
            raise UsageError(
                f"onnxruntime with {EPS[ep]} runs the fp32 ONNX graph; --precision {precision} needs --opt ep=tensorrt"
            )
        from effbench.backends.cuda_util import cuda_index
        from effbench.paths import cache_root

        dev = cuda_index(device)
        cuda_opts = {"device_id": dev}
        locked: dict[str, Any] = {}  # the TensorRT EP builds engines: one build per GPU at a time
        if ep == "cuda":
            providers: list = [["CUDAExecutionProvider", cuda_opts], "CPUExecutionProvider"]
        else:
            (cache_root() / "ort-tensorrt").mkdir(parents=True, exist_ok=True)
            cache = str(cache_root() / "ort-tensorrt")
            trt_opts: dict[str, Any] = {
                "device_id": dev,
                "trt_fp16_enable": precision == "fp16",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": cache,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": cache,
            }
            locked["build_lock_dir"] = str(cache_root() / "tensorrt" / "locks")
            if options.workspace_mb:
                trt_opts["trt_max_workspace_size"] = int(options.workspace_mb * 2**20)
            providers = [
                ["TensorrtExecutionProvider", trt_opts],
                ["CUDAExecutionProvider", cuda_opts],
                "CPUExecutionProvider",
            ]
        return {
            "providers": providers,
            "device_id": dev,
            "execution_provider": EPS[ep],
            "precision_ran": precision if ep == "tensorrt" else "fp32",
            **locked,
        }

    def map_profile(self, layers, graph, runtime_graph):
        from effbench.backends.onnxruntime_profile import map_onnxruntime
        from effbench.backends.profiling import map_by_name

        if not runtime_graph:
            mapping = map_by_name(self.name, layers, graph)
            mapping.warnings.append(
                "ONNX Runtime saved no optimized graph: kernels mapped by identical node names only"
            )
            return mapping
        return map_onnxruntime(layers, graph, runtime_graph)


def cpu_flags() -> set[str]:
    """All of the CPU's instruction-set flags (Linux /proc/cpuinfo; empty elsewhere)."""
    from effbench.core.fingerprint import cpuinfo

    return set((cpuinfo().get("flags") or "").split())


def has_vnni(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def _provider_missing(ep: str) -> str | None:
    import onnxruntime as ort

    name = EPS[ep]
    if name in ort.get_available_providers():
        return None
    if ep == "cuda":
        return f"onnxruntime-gpu not installed: {name} missing (pip install onnxruntime-gpu)"
    return (
        f"this ONNX Runtime build has no {name} (onnxruntime-gpu with TensorRT libraries "
        "installed provides it); use --opt ep=cuda"
    )
