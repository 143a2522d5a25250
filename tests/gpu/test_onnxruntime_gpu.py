"""ONNX Runtime with the CUDA (and TensorRT) execution providers, I/O bound on the device."""

import onnxruntime as ort
import pytest

from effbench.backends.cuda_util import torch_device_uuid
from tests.gpu._requirements import device_memory, needs_cuda, needs_ort_gpu, run_cell, tiny_cfg

pytestmark = needs_cuda + needs_ort_gpu[1:]


def test_cuda_provider_with_device_binding():
    r = run_cell(tiny_cfg("onnxruntime"))
    assert r.status == "ok" and r.parity is not None and r.parity.ok
    assert r.runtime["execution_provider"] == "CUDAExecutionProvider"
    assert r.runtime["providers"][0] == "CUDAExecutionProvider"
    nv = device_memory(r)["nvml"]
    assert nv["uuid"] == torch_device_uuid(0)  # the NVML device matched by UUID, not by index


def test_tensorrt_provider_when_the_build_has_it():
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime-gpu build has no TensorrtExecutionProvider")
    r = run_cell(tiny_cfg("onnxruntime", precision="fp16", options={"ep": "tensorrt"}))
    assert r.status == "ok" and r.precision_ran == "fp16"
