"""Why a GPU test cannot run here, as the reason string pytest prints when it skips.

Each reason is the one effbench itself gives (cuda_util, the backends, the NVML meter), so a
skipped test says exactly what `bench backends --device cuda` would say.
"""

from __future__ import annotations

import pytest

from effbench.backends.cuda_util import cuda_unavailable_reason

CUDA_REASON = cuda_unavailable_reason("cuda:0")


def _trt_reason() -> str | None:
    if CUDA_REASON:
        return CUDA_REASON
    from effbench.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend().unavailable_reason("cuda:0")


def _ort_gpu_reason() -> str | None:
    from effbench.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend().unavailable_reason("cuda:0")


def _nvml_reason() -> str | None:
    if CUDA_REASON:
        return CUDA_REASON
    from effbench.backends import nvml

    meter, reason = nvml.open_meter("cuda:0")
    if meter is not None:
        meter.close()
    return reason


TRT_REASON = _trt_reason()
ORT_GPU_REASON = _ort_gpu_reason()
NVML_REASON = _nvml_reason()

needs_cuda = [pytest.mark.gpu, pytest.mark.skipif(CUDA_REASON is not None, reason=CUDA_REASON or "")]
needs_trt = [pytest.mark.gpu, pytest.mark.skipif(TRT_REASON is not None, reason=TRT_REASON or "")]
needs_ort_gpu = [pytest.mark.gpu, pytest.mark.skipif(ORT_GPU_REASON is not None, reason=ORT_GPU_REASON or "")]
needs_nvml = [pytest.mark.gpu, pytest.mark.skipif(NVML_REASON is not None, reason=NVML_REASON or "")]

FAST = dict(duration_s=0.5, warmup_s=0.2, warmup_iters=5, min_iters=10)
NO_ENERGY = {"energy": "0"}


def tiny_cfg(backend: str, **kw):
    from effbench.harness.config import RunConfig

    base = dict(model="tiny_models:tiny_cnn", backend=backend, device="cuda:0", input_size=32, **FAST)
    opts = dict(NO_ENERGY)
    opts.update(kw.pop("options", {}))
    base.update(kw)
    return RunConfig(options=opts, **base)
