"""PyTorch eager (or torch.compile with --compile)."""

from __future__ import annotations

import numpy as np

from effbench.backends.base import Backend, LayerTime, Session, package_version
from effbench.errors import RunFailed

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchSession(Session):
    def __init__(self, model, device, dtype, channels_last: bool):
        import torch

        super().__init__()
        self.model, self.device, self.dtype, self.channels_last = model, device, dtype, channels_last
        self.x = None
        self.out = None
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
                layers.append(LayerTime(ev.key, ev.key.split("::")[-1], ev.self_cpu_time_total / 1e3 / iters,
                                        [], {"calls": ev.count // max(iters, 1)}))
        return layers

    def close(self):
        self._mode.__exit__(None, None, None)
        self.model = self.x = self.out = None


class TorchBackend(Backend):
    name = "torch"
    aliases = ("pytorch", "eager")
    artifact_format = "torch"
    precisions = ("fp32", "bf16", "fp16")
    devices = ("cpu",)
    description = "PyTorch eager; --compile for torch.compile"

    def version(self):
        return package_version("torch")

    def check_precision(self, precision, device="cpu"):
        if precision == "fp16" and device.startswith("cpu"):
            return "torch runs fp16 on CUDA devices only here; use --precision bf16 on the CPU"
        return super().check_precision(precision, device)

    def load(self, artifact, cfg, input_shape):
        import torch

        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        dtype = getattr(torch, _DTYPES[cfg.precision])
        model = artifact.obj.to(cfg.device if cfg.device != "cpu" else "cpu", dtype)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.compile:
            try:
                model = torch.compile(model, mode=cfg.options.get("compile_mode", "default"))
            except Exception as e:
                raise RunFailed(f"torch.compile failed: {str(e).splitlines()[0]}") from None
        session = TorchSession(model, "cpu", dtype, cfg.channels_last)
        session.precision_ran = cfg.precision
        session.runtime_info = {
            "num_threads": torch.get_num_threads(),
            "compile": cfg.compile,
            "channels_last": cfg.channels_last,
            "dtype": str(dtype),
        }
        return session
