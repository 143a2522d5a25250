"""ONNX Runtime with the CUDA (and TensorRT) execution providers, I/O bound on the device."""

import pytest

from tests.gpu._requirements import needs_cuda, needs_ort_gpu, tiny_cfg

pytestmark = needs_cuda + needs_ort_gpu[1:]


def test_cuda_provider_with_device_binding():
    from effbench.harness.runner import run_cell

    r = run_cell(tiny_cfg("onnxruntime"))
    assert r.status == "ok" and r.parity["ok"]
    assert r.runtime["execution_provider"] == "CUDAExecutionProvider"
    assert r.runtime["providers"][0] == "CUDAExecutionProvider"


def test_tensorrt_provider_when_the_build_has_it():
    import onnxruntime as ort

    from effbench.harness.runner import run_cell

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime-gpu build has no TensorrtExecutionProvider")
    r = run_cell(tiny_cfg("onnxruntime", precision="fp16", options={"ep": "tensorrt"}))
    assert r.status == "ok" and r.precision_ran == "fp16"
