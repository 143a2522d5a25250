"""What the GPU code says and does on any machine, GPU or not (these run everywhere)."""

import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from effbench.backends.cuda_util import NO_DEVICE, ChunkStats, cuda_index, cuda_unavailable_reason, is_cuda
from effbench.backends.registry import get_backend
from effbench.errors import UsageError
from tests.conftest import TINY_CNN, bench, one_line
from tests.gpu._requirements import CUDA_REASON


def test_device_names():
    assert cuda_index("cuda") == 0 and cuda_index("cuda:3") == 3
    assert is_cuda("cuda:1") and not is_cuda("cpu")
    with pytest.raises(UsageError, match="cuda or cuda:N"):
        cuda_index("gpu0")
    assert "invalid CUDA device" in (cuda_unavailable_reason("cuda:x") or "")


@pytest.mark.skipif(CUDA_REASON is None, reason="a CUDA device is present")
def test_without_a_gpu_every_gpu_backend_says_why():
    assert CUDA_REASON in (NO_DEVICE, "torch built without CUDA (install a CUDA build of torch)")
    assert get_backend("torch").unavailable_reason("cuda:0") == CUDA_REASON
    assert get_backend("torch").unavailable_reason("cpu") is None  # the CPU is untouched
    trt = get_backend("trt")
    assert trt.name == "tensorrt"
    assert trt.unavailable_reason("cuda:0") in ("tensorrt not installed (pip install tensorrt)", CUDA_REASON)


def test_tensorrt_says_it_runs_on_cuda_only_or_is_missing():
    reason = get_backend("tensorrt").unavailable_reason("cpu")
    assert reason is not None
    assert reason == "tensorrt not installed (pip install tensorrt)" or "CUDA devices only" in reason


def test_onnxruntime_gpu_reason_names_the_package():
    reason = get_backend("onnxruntime").unavailable_reason("cuda:0")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert reason == ("onnxruntime-gpu not installed: CUDAExecutionProvider missing (pip install onnxruntime-gpu)")
    assert get_backend("onnxruntime").unavailable_reason("cpu") is None
    assert get_backend("onnxruntime").check_precision("fp16", "cpu") == "onnxruntime on cpu runs fp32, int8, not fp16"


def test_torch_precisions_per_device():
    torch_b = get_backend("torch")
    assert torch_b.check_precision("fp16", "cuda:0") is None
    assert "CUDA devices only" in (torch_b.check_precision("fp16", "cpu") or "")
    assert "int8" in (torch_b.check_precision("int8", "cuda:0") or "")


def test_chunk_stats_keep_recent_chunks_only():
    s = ChunkStats(keep=3)
    for _ in range(5):
        s.add(10, 2_000_000, 1_000_000)
    d = s.to_dict()
    assert d["chunks"] == 5 and d["iterations"] == 50 and len(d["recent_chunks"]) == 3
    assert d["device_over_host"] == pytest.approx(0.5)


def test_bench_backends_lists_the_gpu_backends_with_their_reasons():
    if not (Path(sys.executable).parent / "bench").exists():
        pytest.skip("the bench console script is not installed (pip install -e .)")
    r = bench("backends", "--device", "cuda:0")
    assert r.returncode == 0, r.output
    assert "tensorrt" in r.output and "trt" in r.output
    if CUDA_REASON:
        assert CUDA_REASON in r.output.replace("\n", " ") or "not installed" in r.output


def test_bench_run_on_tensorrt_without_it_is_one_line_naming_what_to_install(cli):
    reason = get_backend("trt").unavailable_reason("cuda:0")
    if reason is None:
        pytest.skip("TensorRT, CUDA and the driver are all usable here")
    r = cli("run", *TINY_CNN, "--backend", "trt", "--device", "cuda:0")
    line = one_line(r, 2, "tensorrt")
    assert reason in line
    assert any(fix in line for fix in ("pip install", "driver", "CUDA build of torch", "nvidia-smi"))
