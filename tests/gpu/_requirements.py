"""Why a GPU test cannot run here, as the reason string pytest prints when it skips, and the one way
the GPU tests run a cell (check, prepare, a launcher, assemble: what `bench run` does).

Each reason is the one effbench itself gives (cuda_util, the backends, the NVML meter), so a
skipped test says exactly what `bench backends --device cuda` would say. Every name the GPU tests
use is imported at module level: `pytest --collect-only tests/gpu` on a CPU machine fails the
moment one of them disappears.
"""

from __future__ import annotations

from typing import Any

import pytest

from effbench.backends import nvml
from effbench.backends.cuda_util import cuda_unavailable_reason
from effbench.backends.onnxruntime_backend import OnnxRuntimeBackend
from effbench.backends.registry import get_backend
from effbench.core.session import Session
from effbench.harness.config import RunConfig
from effbench.harness.launchers.local import InProcess
from effbench.harness.prepare import PreparedCell, check_cell, prepare
from effbench.harness.result import Result

CUDA_REASON = cuda_unavailable_reason("cuda:0")


def _trt_reason() -> str | None:
    return CUDA_REASON or get_backend("tensorrt").unavailable_reason("cuda:0")


def _ort_gpu_reason() -> str | None:
    return OnnxRuntimeBackend().unavailable_reason("cuda:0")


def _nvml_reason() -> str | None:
    if CUDA_REASON:
        return CUDA_REASON
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

FAST: dict[str, Any] = dict(duration_s=0.5, warmup_s=0.2, warmup_iters=5, min_iters=10)
NO_ENERGY = {"energy": "0"}


def tiny_cfg(backend: str, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(model="tiny_models:tiny_cnn", backend=backend, device="cuda:0", input_size=32, **FAST)
    opts = dict(NO_ENERGY)
    opts.update(kw.pop("options", {}))
    base.update(kw)
    return RunConfig(options=opts, **base)


def run_cell(cfg: RunConfig) -> Result:
    """One cell measured in this process, assembled into its Result."""
    return InProcess().run(prepare(check_cell(cfg)), lambda msg: None)


def open_session(cfg: RunConfig) -> tuple[PreparedCell, Session]:
    """The cell's artifact opened by its backend (Backend.open), not yet bound."""
    cell = prepare(check_cell(cfg))
    return cell, get_backend(cell.backend).open(cell.artifact, cell.settings)


def device_memory(r: Result) -> dict[str, Any]:
    assert r.memory is not None and r.memory.device is not None, r.memory
    return r.memory.device
