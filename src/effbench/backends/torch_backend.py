"""PyTorch eager (or torch.compile with --compile), on the CPU or a CUDA device.

On CUDA: inputs live on the device, each inference is timed with a CUDA event pair (one
synchronisation per chunk), `--cuda-graph` captures the forward after a side-stream warm-up and
replays it, fp16/bf16 run as such, and fp32 means IEEE fp32 (TF32 off) unless `--opt tf32=1`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, LayerTime, Session, package_version
from effbench.backends.cuda_util import CudaTimedRuns
from effbench.errors import RunFailed, UsageError

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchOptions(BackendOptions):
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        "default", description="torch.compile mode (with --compile)"
    )
    tf32: bool = Field(False, description="CUDA: let fp32 matmuls and convolutions use TF32")
    cudnn_benchmark: bool = Field(True, description="CUDA: cudnn.benchmark autotuning")


class TorchSession(Session):
    def __init__(self, model, device, dtype, channels_last: bool):
        import torch

        super().__init__()
        self.model, self.device, self.dtype, self.channels_last = model, device, dtype, channels_last
        self.x: Any = None
        self.out: Any = None
        # inference mode is entered once here, not per call: the timed call is the forward alone
        self._mode = torch.inference_mode()
        self._mode.__enter__()

    def bind(self, inputs):
        import torch

        arr = next(iter(inputs.values()))
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device, self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.x = x

    def run(self):
        self.out = self.model(self.x)

    def outputs(self):
        out = self.out
        if isinstance(out, (tuple, list)):
            out = out[0]
        return [out.detach().float().cpu().numpy()]

    def profile(self, iters):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            for _ in range(iters):
                self.run()
        layers = []
        for ev in prof.key_averages():
            if ev.key.startswith("aten::") and ev.self_cpu_time_total > 0:
                layers.append(
                    LayerTime(
                        ev.key,
                        ev.key.split("::")[-1],
                        ev.self_cpu_time_total / 1e3 / iters,
                        [],
                        {"calls": ev.count // max(iters, 1)},
                    )
                )
        return layers

    def close(self):
        self._mode.__exit__(None, None, None)
        self.model = self.x = self.out = None


class TorchCudaSession(CudaTimedRuns, TorchSession):
    """The same forward on a CUDA device: CUDA-event timing, optional CUDA graph, GPU memory."""

    def __init__(self, model, device, dtype, channels_last: bool, cuda_graph: bool, restore_flags: dict):
        import torch

        from effbench.backends.cuda_util import ChunkStats, EventPool

        super().__init__(model, device, dtype, channels_last)
        self.index = torch.device(device).index or 0
        self.use_graph = cuda_graph
        self.graph: Any = None
        self.stream = torch.cuda.current_stream(self.index)
        self._pool: Any = EventPool()
        self._stats = ChunkStats()
        self._restore_flags = restore_flags
        self._after_load_allocated = torch.cuda.memory_allocated(self.index)
        torch.cuda.reset_peak_memory_stats(self.index)

    def bind(self, inputs):
        import time

        import torch

        super().bind(inputs)  # copies to the device
        torch.cuda.synchronize(self.index)
        if not self.use_graph:
            return
        # warm up on a side stream (lazy init, cuDNN autotuning, allocator growth), then capture
        side = torch.cuda.Stream(self.index)
        side.wait_stream(torch.cuda.current_stream(self.index))
        t0 = time.perf_counter()
        with torch.cuda.stream(side):
            for i in range(3):
                self.model(self.x)
                if i == 0:
                    side.synchronize()
                    self.runtime_info["first_inference_eager_ms"] = round((time.perf_counter() - t0) * 1e3, 4)
        torch.cuda.current_stream(self.index).wait_stream(side)
        torch.cuda.synchronize(self.index)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.out = self.model(self.x)
        except Exception as e:
            raise RunFailed(
                f"CUDA graph capture failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                "; run without --cuda-graph"
            ) from None
        torch.cuda.synchronize(self.index)
        self.graph = graph
        self.runtime_info["cuda_graph_captured"] = True

    def _launch(self):
        if self.graph is not None:
            self.graph.replay()
        else:
            self.out = self.model(self.x)

    def profile(self, iters):
        import torch
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=False) as prof:
            for _ in range(iters):
                self.model(self.x)  # eager even with a CUDA graph: a replay hides the kernels
            torch.cuda.synchronize(self.index)
        layers = []
        for ev in prof.key_averages():
            dev_us = getattr(ev, "self_device_time_total", None)
            if dev_us is None:
                dev_us = getattr(ev, "self_cuda_time_total", 0)
            if dev_us and dev_us > 0:
                op = ev.key.split("::")[-1] if ev.key.startswith("aten::") else "cuda_kernel"
                layers.append(LayerTime(ev.key, op, dev_us / 1e3 / iters, [], {"calls": ev.count // max(iters, 1)}))
        return layers

    def device_memory(self):
        from effbench.backends.cuda_util import nvml_memory, torch_allocator_memory

        out = torch_allocator_memory(self.index, self._after_load_allocated)
        out["allocator_covers"] = "bind + warm-up + measurement (peak reset after load)"
        nv = nvml_memory(self.index)
        if nv:
            out["nvml"] = nv
        return out

    def close(self):
        import torch

        super().close()
        self.graph = None
        self._pool = None
        for (obj, attr), value in self._restore_flags.items():
            setattr(obj, attr, value)
        torch.cuda.empty_cache()


def _prepare(module, device: str, dtype, opts: dict[str, Any]):
    """The module to run: on `device` in `dtype`, channels_last and compiled as asked."""
    import torch

    model = module.eval().to(device, dtype)
    if opts.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    if opts.get("compile"):
        try:
            model = torch.compile(model, mode=opts.get("compile_mode", "default"))
        except Exception as e:
            raise RunFailed(f"torch.compile failed: {str(e).splitlines()[0]}") from None
    return model


class TorchBackend(Backend):
    name = "torch"
    aliases = ("pytorch", "eager")
    artifact_format = "torch"
    exporter = "effbench.export.pipeline:torch_artifact"
    precisions = ("fp32", "bf16", "fp16")
    devices = ("cpu", "cuda")
    description = "PyTorch eager; --compile for torch.compile; on cuda: --cuda-graph, --opt tf32=1"
    Options = TorchOptions
    maps_by_op_type = True  # aten ops carry no ONNX node names

    def kernel_op_type(self, layer_name: str) -> str | None:
        from effbench.backends.torch_profile import torch_op_type

        return torch_op_type(layer_name)

    packages = ("torch", "torchvision", "timm")
    preload = ("torch", "timm")

    def version(self):
        return package_version("torch")

    def unavailable_reason(self, device="cpu"):
        if device.split(":")[0] == "cuda" and self.version() is not None:
            from effbench.backends.cuda_util import cuda_unavailable_reason

            return cuda_unavailable_reason(device)
        return super().unavailable_reason(device)

    def check_precision(self, precision, device="cpu"):
        if precision == "fp16" and device.startswith("cpu"):
            return "torch runs fp16 on CUDA devices only here; use --precision bf16 on the CPU"
        return super().check_precision(precision, device)

    def runtime_options(self, options, cell) -> dict[str, Any]:
        if cell.device.split(":")[0] == "cuda" and cell.compile and cell.cuda_graph:
            raise UsageError(
                "--cuda-graph with --compile: use --opt compile_mode=reduce-overhead "
                "(torch.compile's own CUDA graphs) instead"
            )
        return {
            **options.model_dump(),
            "compile": cell.compile,
            "channels_last": cell.channels_last,
            "cuda_graph": cell.cuda_graph,
        }

    def open(self, artifact, settings):
        import torch

        from effbench.models.loaders import build_from_recipe

        opts = settings.runtime_options
        module = build_from_recipe(artifact.model or {})
        if settings.device.split(":")[0] == "cuda":
            return self._open_cuda(module, settings, opts)
        if settings.threads:
            torch.set_num_threads(int(settings.threads))
        dtype = getattr(torch, _DTYPES[settings.precision])
        model = _prepare(module, "cpu", dtype, opts)
        session = TorchSession(model, "cpu", dtype, bool(opts.get("channels_last")))
        session.precision_ran = settings.precision
        session.runtime_info = {
            "num_threads": torch.get_num_threads(),
            "compile": bool(opts.get("compile")),
            "channels_last": bool(opts.get("channels_last")),
            "dtype": str(dtype),
        }
        return session

    def _open_cuda(self, module, settings, opts):
        import torch

        from effbench.backends.cuda_util import cuda_index, cuda_unavailable_reason, gpu_identity, tf32_capable

        reason = cuda_unavailable_reason(settings.device)
        if reason:
            raise UsageError(f"torch cannot run on {settings.device}: {reason}")
        index = cuda_index(settings.device)
        device = f"cuda:{index}"
        torch.cuda.set_device(index)
        tf32 = bool(opts.get("tf32"))
        flags = {
            (torch.backends.cuda.matmul, "allow_tf32"): torch.backends.cuda.matmul.allow_tf32,
            (torch.backends.cudnn, "allow_tf32"): torch.backends.cudnn.allow_tf32,
            (torch.backends.cudnn, "benchmark"): torch.backends.cudnn.benchmark,
        }
        # fp32 means IEEE fp32 unless asked: cuDNN convolutions default to TF32 on Ampere and later
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = bool(opts.get("cudnn_benchmark", True))
        dtype = getattr(torch, _DTYPES[settings.precision])
        model = _prepare(module, device, dtype, opts)
        torch.cuda.synchronize(index)
        session = TorchCudaSession(
            model, device, dtype, bool(opts.get("channels_last")), bool(opts.get("cuda_graph")), flags
        )
        ran = settings.precision
        if ran == "fp32" and tf32 and tf32_capable(index):
            ran = "tf32"
        session.precision_ran = ran
        session.runtime_info = {
            "device": device,
            "gpu": gpu_identity(index),
            "compile": bool(opts.get("compile")),
            "channels_last": bool(opts.get("channels_last")),
            "dtype": str(dtype),
            "cuda_graph": bool(opts.get("cuda_graph")),
            "timing": "cuda_events",
            "allow_tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_version": torch.backends.cudnn.version(),
        }
        return session
