"""NVIDIA TensorRT: an engine built from the ONNX export (effbench.export.tensorrt_export, keyed by the
ONNX artifact, precision, GPU model and TensorRT version, built in the export step on the GPU it
runs on), run from pre-allocated device buffers.

Inputs and outputs are torch CUDA tensors whose addresses are set once on the execution context;
one inference is `execute_async_v3` on a torch stream. Timing uses a CUDA event pair per
inference; `--cuda-graph` captures the enqueue and replays it. Per-layer times come from an
IProfiler, and the engine inspector (ProfilingVerbosity.DETAILED at build) says which ONNX nodes
each fused layer covers.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import numpy as np
from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, LayerTime, Session, package_version
from effbench.backends.cuda_util import CudaTimedRuns
from effbench.core.placement import Node, summarize
from effbench.errors import RunFailed, UsageError

NOT_INSTALLED = "tensorrt not installed (pip install tensorrt)"
DRIVER_HINT = (
    "; the TensorRT wheel needs an NVIDIA driver that supports its CUDA major version: update the driver, "
    "or install the TensorRT wheel for the CUDA version `nvidia-smi` shows (pip install tensorrt-cu12)"
)
_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]\x1e\x1f]+)\]")


# --- engine inspector JSON (pure: tested on the CPU with recorded inspector output) ----------------


def metadata_nodes(metadata: str | None) -> list[str]:
    """ONNX node names in an inspector layer's Metadata: '[ONNX Layer: a]\\x1f[ONNX Layer: b]'."""
    if not metadata:
        return []
    seen: list[str] = []
    for name in _ONNX_LAYER.findall(metadata):
        name = name.strip()
        if name and name not in seen:
            seen.append(name)
    return seen


def _layer_type(entry: dict) -> str:
    return str(entry.get("LayerType") or entry.get("Type") or "?")


def _layer_precision(entry: dict) -> str | None:
    outs = entry.get("Outputs") or []
    if outs and isinstance(outs[0], dict):
        o = outs[0]
        # TensorRT 10: "Format/Datatype"; TensorRT 11 split it into "Format" and "Datatype"
        return o.get("Datatype") or o.get("Format/Datatype") or o.get("DataType")
    return None


def parse_engine_layers(info_json: str) -> dict[str, dict[str, Any]]:
    """{layer name: {"type", "nodes", "tactic", "precision"}} from get_engine_information(JSON).

    With ProfilingVerbosity.LAYER_NAMES_ONLY the layers are bare strings: they come back with no
    type and no nodes.
    """
    try:
        data = json.loads(info_json)
    except (TypeError, ValueError):
        return {}
    layers = data.get("Layers", []) if isinstance(data, dict) else []
    out: dict[str, dict[str, Any]] = {}
    for entry in layers:
        if isinstance(entry, str):
            out[entry] = {"type": "?", "nodes": [], "tactic": None, "precision": None}
            continue
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("Name", ""))
        out[name] = {
            "type": _layer_type(entry),
            "nodes": metadata_nodes(entry.get("Metadata")),
            "tactic": entry.get("TacticName") or entry.get("Tactic"),
            "precision": _layer_precision(entry),
        }
    return out


# the inspector's datatype words ("Row major linear FP32", "Channel major FP16 format ...", "Half", "Int8")
_PRECISION_WORDS: tuple[tuple[str, str], ...] = (
    ("int8", "int8"),
    ("fp8", "fp8"),
    ("bfloat16", "bf16"),
    ("bf16", "bf16"),
    ("half", "fp16"),
    ("fp16", "fp16"),
    ("float", "fp32"),
    ("fp32", "fp32"),
    ("int32", "int32"),
    ("int64", "int64"),
)


def layer_precision(datatype: str | None) -> str:
    text = (datatype or "").lower()
    return next((name for word, name in _PRECISION_WORDS if word in text), "?")


def engine_placement(layers: dict[str, dict[str, Any]], precision: str) -> tuple[dict[str, Any] | None, list[list]]:
    """The placement summary of an engine's layers (all on the GPU; DLA layers on the DLA) and the rows
    whose MACs the harness adds from the ONNX nodes each layer covers. None when the engine was built
    without detailed inspector output (names only: no type, no precision)."""
    if not layers or all(meta.get("precision") is None for meta in layers.values()):
        return None, []
    rows: list[list] = []
    nodes: list[Node] = []
    for name, meta in layers.items():
        unit = "DLA" if "dla" in str(meta.get("type")).lower() else "GPU"
        prec = layer_precision(meta.get("precision"))
        nodes.append((name, str(meta.get("type")), unit, prec, None))
        rows.append([name, str(meta.get("type")), unit, prec, None, list(meta.get("nodes") or [])])
    return summarize(nodes, "GPU", precision=precision), rows


def layer_times(totals: dict[str, list[float]], iters: int, layers: dict[str, dict[str, Any]]) -> list[LayerTime]:
    """LayerTime per profiled layer, in execution order, with the ONNX nodes it covers."""
    out = []
    for name, (total_ms, calls) in totals.items():
        meta = layers.get(name)
        extra: dict[str, Any] = {"calls": int(calls // max(iters, 1))}
        if meta is None:
            extra["inspector"] = "layer not in the engine inspector's list"
        else:
            if meta.get("tactic"):
                extra["tactic"] = meta["tactic"]
            if meta.get("precision"):
                extra["precision"] = meta["precision"]
        out.append(
            LayerTime(
                name,
                (meta or {}).get("type", "?"),
                total_ms / max(iters, 1),
                list((meta or {}).get("nodes", [])),
                extra,
            )
        )
    return out


def _profiler(trt):
    class _LayerProfiler(trt.IProfiler):  # type: ignore[name-defined]
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.totals: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name, ms):
            rec = self.totals.setdefault(str(layer_name), [0.0, 0])
            rec[0] += float(ms)
            rec[1] += 1

    return _LayerProfiler()


# --- creating TensorRT objects: the logger's own words when one fails ----------------------------


def capturing_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps the errors (and the last warnings) it is given."""

    class _Log(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity: Any, msg: Any) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(str(msg))
            elif severity == trt.ILogger.WARNING:
                self.warnings.append(str(msg))
                del self.warnings[:-20]

    return _Log()


def creation_failure(what: str, logger: Any, error: BaseException | None) -> str:
    """One line for a Builder/Runtime that could not be made: the logger's error (where TensorRT
    says why, e.g. the CUDA driver is too old) before pybind11's 'factory function returned nullptr'."""
    said = [e.strip() for e in getattr(logger, "errors", []) if e.strip()]
    raised = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    text = (said[-1] if said else raised) or "no error message"
    hint = DRIVER_HINT if re.search(r"cuda|driver", text, re.IGNORECASE) else ""
    return f"TensorRT could not create its {what}: {text}{hint}"


def create(trt: Any, what: str, logger: Any) -> Any:
    """trt.Builder(logger) or trt.Runtime(logger); RunFailed with the logger's error when it fails."""
    try:
        made = getattr(trt, what)(logger)
    except (TypeError, RuntimeError) as e:  # pybind11: "factory function returned nullptr"
        raise RunFailed(creation_failure(what, logger, e)) from None
    if made is None:
        raise RunFailed(creation_failure(what, logger, None))
    return made


@functools.lru_cache(maxsize=1)
def runtime_probe() -> str | None:
    """None when TensorRT imports and can create a Runtime (so it can initialise CUDA); else why not."""
    try:
        import tensorrt as trt
    except Exception as e:
        return f"tensorrt cannot be imported: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    try:
        create(trt, "Runtime", capturing_logger(trt))
    except RunFailed as e:
        return str(e)
    return None


# --- the session ----------------------------------------------------------------------------------


def _torch_dtype(torch, trt_dtype) -> Any:
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1].upper()
    table = {
        "FLOAT": torch.float32,
        "HALF": torch.float16,
        "BF16": torch.bfloat16,
        "INT8": torch.int8,
        "INT32": torch.int32,
        "INT64": torch.int64,
        "BOOL": torch.bool,
        "UINT8": torch.uint8,
    }
    if name not in table:
        raise RunFailed(f"TensorRT engine I/O type {name} is not supported here")
    return table[name]


class TensorRTSession(CudaTimedRuns, Session):
    _logger: Any = None  # the TensorRT logger must outlive the runtime that logs to it

    def __init__(self, trt, runtime, engine, device_index: int, input_shape: tuple[int, ...], cuda_graph: bool):
        import torch

        from effbench.backends.cuda_util import ChunkStats, EventPool

        super().__init__()
        self.trt, self.runtime, self.engine = trt, runtime, engine
        self.index = device_index
        self.device = f"cuda:{device_index}"
        self.use_graph = cuda_graph
        self.graph: Any = None
        self.stream = torch.cuda.Stream(device_index)
        self._pool, self._stats = EventPool(), ChunkStats()
        self.context = engine.create_execution_context()
        if self.context is None:
            raise RunFailed("TensorRT could not create an execution context (out of GPU memory?)")
        self.inputs: dict[str, Any] = {}
        self.outputs_: dict[str, Any] = {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        for n in names:
            if is_input[n] and any(int(d) < 0 for d in engine.get_tensor_shape(n)):
                self.context.set_input_shape(n, tuple(input_shape))
        for n in names:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(n))
            t = torch.empty(shape, dtype=_torch_dtype(torch, engine.get_tensor_dtype(n)), device=self.device)
            (self.inputs if is_input[n] else self.outputs_)[n] = t
            self.context.set_tensor_address(n, int(t.data_ptr()))
        self._after_load_allocated = torch.cuda.memory_allocated(device_index)
        torch.cuda.reset_peak_memory_stats(device_index)

    def bind(self, inputs):
        import torch

        arrays = list(inputs.values())
        for k, (name, t) in enumerate(self.inputs.items()):
            arr = inputs.get(name, arrays[k] if k < len(arrays) else None)
            if arr is None:
                raise RunFailed(f"no input for the engine's input tensor {name!r}")
            src = torch.from_numpy(np.ascontiguousarray(arr))
            if tuple(src.shape) != tuple(t.shape):
                raise RunFailed(f"input {name!r} has shape {tuple(src.shape)}, the engine expects {tuple(t.shape)}")
            t.copy_(src.to(t.dtype))
        torch.cuda.synchronize(self.index)
        self._enqueue()  # one run before capture: TensorRT finishes lazy setup on the first enqueue
        self.stream.synchronize()
        if self.use_graph:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                    self._enqueue()
            except Exception as e:
                raise RunFailed(
                    f"CUDA graph capture of the TensorRT engine failed: {str(e).splitlines()[0]}"
                    "; run without --cuda-graph"
                ) from None
            torch.cuda.synchronize(self.index)
            self.graph = graph
            self.runtime_info["cuda_graph_captured"] = True

    def _enqueue(self):
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RunFailed("TensorRT execute_async_v3 failed")

    def _launch(self):
        if self.graph is not None:
            import torch

            with torch.cuda.stream(self.stream):
                self.graph.replay()
        else:
            self._enqueue()

    def outputs(self):
        return [t.detach().float().cpu().numpy() for t in self.outputs_.values()]

    def layer_info(self) -> dict[str, dict[str, Any]]:
        try:
            inspector = self.engine.create_engine_inspector()
            inspector.execution_context = self.context
            text = inspector.get_engine_information(self.trt.LayerInformationFormat.JSON)
        except Exception:
            return {}
        return parse_engine_layers(text)

    def profile(self, iters):
        """Per-layer times from an IProfiler on a second execution context (same buffers)."""
        ctx = self.engine.create_execution_context()
        for name, t in {**self.inputs, **self.outputs_}.items():
            if name in self.inputs and any(int(d) < 0 for d in self.engine.get_tensor_shape(name)):
                ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, int(t.data_ptr()))
        prof = _profiler(self.trt)
        ctx.profiler = prof
        for _ in range(iters):
            ctx.execute_async_v3(self.stream.cuda_stream)
            self.stream.synchronize()
        del ctx
        return layer_times(prof.totals, iters, self.layer_info())

    def device_memory(self):
        from effbench.backends.cuda_util import nvml_memory, torch_allocator_memory

        out = torch_allocator_memory(self.index, self._after_load_allocated)
        out["allocator_covers"] = "I/O buffers (torch); TensorRT's own activation memory is engine_device_memory_mb"
        size = getattr(self.engine, "device_memory_size_v2", None)
        if size is None:
            size = getattr(self.engine, "device_memory_size", None)
        if size is not None:
            out["engine_device_memory_mb"] = round(int(size) / 2**20, 2)
        nv = nvml_memory(self.index)
        if nv:
            out["nvml"] = nv
        return out

    def close(self):
        import torch

        self.graph = None
        self.context = None
        self.engine = None
        self.runtime = None
        self.inputs, self.outputs_ = {}, {}
        torch.cuda.empty_cache()


# --- the backend ----------------------------------------------------------------------------------


class TensorRTOptions(BackendOptions):
    workspace_mb: float | None = Field(None, gt=0, description="builder workspace memory-pool limit")
    opt_level: int | None = Field(None, ge=0, le=5, description="builder optimisation level 0-5")
    calib_dir: str | None = Field(None, description="int8: a folder of .npy calibration batches")
    calib_batches: int | None = Field(None, ge=1, description="int8: calibration batches (default 128 images' worth)")
    tf32: bool = Field(False, description="fp32 engines may use TF32")


def trt_version() -> str | None:
    """The installed TensorRT version (package metadata first: no import needed)."""
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_cu12", "tensorrt-libs"):
        found = package_version(dist)
        if found:
            return found
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return None
    try:  # e.g. a system install (apt, NGC / L4T images) without pip metadata
        import tensorrt

        return str(tensorrt.__version__)
    except Exception:
        return None


def major(version: str | None) -> int:
    m = re.match(r"(\d+)", version or "")
    return int(m.group(1)) if m else 0


def strongly_typed_only(version: str | None) -> bool:
    """TensorRT 11 removed the weak-typing precision flags (FP16, INT8) and the calibrators."""
    return major(version) >= 11


class TensorRTBackend(Backend):
    name = "tensorrt"
    aliases = ("trt",)
    artifact_format = "tensorrt"  # built from the ONNX export on the GPU it runs on (export.tensorrt_export)
    exporter = "effbench.export.pipeline:tensorrt_artifact"
    precisions = ("fp32", "fp16", "int8")
    devices = ("cuda",)
    description = "NVIDIA TensorRT engine from the ONNX export; --opt workspace_mb=, calib_dir=, tf32=1"
    Options = TensorRTOptions
    packages = ("tensorrt",)

    def version(self):
        return trt_version()

    def unavailable_reason(self, device="cpu"):
        if self.version() is None:
            return NOT_INSTALLED
        if device.split(":")[0] != "cuda":
            return f"tensorrt runs on CUDA devices only (use --device cuda or cuda:N, not {device!r})"
        from effbench.backends.cuda_util import cuda_unavailable_reason

        reason = cuda_unavailable_reason(device)
        if reason:
            return reason
        return runtime_probe()

    def check_precision(self, precision, device="cpu"):
        reason = super().check_precision(precision, device)
        if reason:
            return reason
        if precision != "fp32" and strongly_typed_only(self.version()):
            import importlib.util

            if importlib.util.find_spec("modelopt") is None:
                return (
                    f"TensorRT {self.version()} builds strongly typed networks only: {precision} needs the ONNX "
                    "converted by NVIDIA ModelOpt first (pip install nvidia-modelopt[onnx]), or TensorRT 10"
                )
        return None

    def runtime_options(self, options, cell):
        return {**options.model_dump(exclude_none=True), "cuda_graph": cell.cuda_graph}

    def map_profile(self, layers, graph, runtime_graph):
        from effbench.backends.profiling import map_reported

        return map_reported(self.name, layers)  # the engine inspector names each fused layer's ONNX nodes

    def open(self, artifact, settings):
        from effbench.backends.cuda_util import cuda_index, gpu_identity, tf32_capable

        reason = self.unavailable_reason(settings.device)
        if reason:
            raise UsageError(f"tensorrt is not usable here: {reason}")
        if artifact.format != "tensorrt" or not artifact.path:
            raise RunFailed("the tensorrt backend opens an engine built by the export step")
        import tensorrt as trt
        import torch

        opts = settings.runtime_options
        index = cuda_index(settings.device)
        torch.cuda.set_device(index)
        logger = capturing_logger(trt)
        runtime = create(trt, "Runtime", logger)
        with open(artifact.path, "rb") as f:
            engine = runtime.deserialize_cuda_engine(f.read())
        if engine is None:
            said = f" ({logger.errors[-1]})" if logger.errors else ""
            raise RunFailed(
                f"TensorRT could not deserialize the cached engine {artifact.path}{said}; "
                "delete that cache entry to rebuild it"
            )
        input_shape = tuple(settings.input_shape)
        session = TensorRTSession(trt, runtime, engine, index, input_shape, bool(opts.get("cuda_graph")))
        session._logger = logger  # outlives the runtime that logs to it
        ran = settings.precision
        if ran == "fp32" and opts.get("tf32") and tf32_capable(index):
            ran = "tf32"
        session.precision_ran = ran
        layers = session.layer_info()
        precisions: dict[str, int] = {}
        for meta in layers.values():
            key = str(meta.get("precision") or "?")
            precisions[key] = precisions.get(key, 0) + 1
        build = artifact.meta.get("build", {})
        session.runtime_info = {
            "tensorrt": str(trt.__version__),
            "device": f"cuda:{index}",
            "gpu": gpu_identity(index),
            "engine_build_s_original": round(float(artifact.meta.get("export_s", 0.0)), 3),
            "engine_key": artifact.key,
            "builder_flags": build.get("flags"),
            "converter": build.get("converter"),
            "calibration": build.get("calibration"),
            "timing_cache": build.get("timing_cache"),
            "build_lock": build.get("build_lock"),
            "workspace_mb": opts.get("workspace_mb"),
            "cuda_graph": bool(opts.get("cuda_graph")),
            "timing": "cuda_events",
            "engine_layers": len(layers),
            "layer_output_types": precisions,
        }
        placement, rows = engine_placement(layers, settings.precision)
        if placement is not None:
            session.runtime_info.update(placement=placement, placement_nodes=rows)
        return session
