"""TensorRT engines: build through the cache, run, CUDA graph, int8 calibration, per-layer times."""

import importlib.util

import numpy as np
import pytest

from effbench.backends.tensorrt_backend import strongly_typed_only, trt_version
from tests.gpu._requirements import device_memory, needs_trt, open_session, run_cell, tiny_cfg

pytestmark = needs_trt


def run(**kw):
    return run_cell(tiny_cfg("tensorrt", **kw))


def needs_modelopt_on_trt11():
    if strongly_typed_only(trt_version()) and importlib.util.find_spec("modelopt") is None:
        pytest.skip(f"TensorRT {trt_version()} fp16/int8 needs nvidia-modelopt (pip install nvidia-modelopt[onnx])")


def test_fp32_engine_builds_once_then_comes_from_the_cache():
    first = run()
    assert first.status == "ok" and first.parity is not None and first.parity.ok, first.parity
    assert first.precision_ran == "fp32" and first.runtime["timing"] == "cuda_events"
    assert first.runtime["engine_layers"] > 0
    assert first.runtime["build_lock"]["gpu"]  # built under the GPU's build lock
    second = run()
    assert second.artifact_cached is True and second.timing.load_cold_s is None
    assert second.runtime["engine_key"] == first.runtime["engine_key"]
    assert device_memory(second)["engine_device_memory_mb"] >= 0


def test_fp16_and_cuda_graph():
    needs_modelopt_on_trt11()
    r = run(precision="fp16", cuda_graph=True, options={"workspace_mb": "256"})
    assert r.status == "ok" and r.precision_ran == "fp16" and r.parity is not None and r.parity.ok, r.parity
    assert r.runtime["cuda_graph_captured"] is True and r.runtime["workspace_mb"] == 256


def test_int8_with_synthetic_calibration():
    needs_modelopt_on_trt11()
    r = run(precision="int8", options={"calib_batches": "4"})
    assert r.status == "ok" and r.precision_ran == "int8"


def test_per_layer_times_name_the_onnx_nodes():
    cell, s = open_session(tiny_cfg("tensorrt"))
    try:
        s.bind({cell.input_name: np.zeros(cell.settings.input_shape, np.float32)})
        layers = s.profile(5)
        assert layers and sum(lt.time_ms for lt in layers) > 0
        covered = {n for lt in layers for n in lt.nodes}
        assert any("Conv" in n for n in covered), [lt.to_dict() for lt in layers]
    finally:
        s.close()
