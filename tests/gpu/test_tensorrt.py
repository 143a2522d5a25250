"""TensorRT engines: build through the cache, run, CUDA graph, int8 calibration, per-layer times."""

import pytest

from tests.gpu._requirements import needs_trt, tiny_cfg

pytestmark = needs_trt


def run(**kw):
    from effbench.harness.runner import run_cell

    return run_cell(tiny_cfg("tensorrt", **kw))


def test_fp32_engine_builds_once_then_comes_from_the_cache():
    first = run()
    assert first.status == "ok" and first.parity["ok"], first.parity
    assert first.precision_ran == "fp32" and first.runtime["timing"] == "cuda_events"
    assert first.runtime["engine_layers"] > 0
    second = run()
    assert second.runtime["engine_cached"] is True and second.runtime["engine_build_s"] == 0.0
    assert second.runtime["engine_key"] == first.runtime["engine_key"]
    assert second.memory["device"]["engine_device_memory_mb"] >= 0


def test_fp16_and_cuda_graph():
    r = run(precision="fp16", cuda_graph=True, options={"workspace_mb": "256"})
    assert r.status == "ok" and r.precision_ran == "fp16" and r.parity["ok"], r.parity
    assert r.runtime["cuda_graph_captured"] is True and r.runtime["workspace_mb"] == 256


def test_int8_with_synthetic_calibration():
    from effbench.export.tensorrt_export import strongly_typed_only, trt_version

    if strongly_typed_only(trt_version()):
        pytest.importorskip("modelopt", reason="TensorRT 11 int8 needs nvidia-modelopt")
    r = run(precision="int8", options={"calib_batches": "4"})
    assert r.status == "ok" and r.precision_ran == "int8"


def test_per_layer_times_name_the_onnx_nodes():
    import numpy as np

    from effbench.backends.registry import get_backend
    from effbench.export.pipeline import ModelSource, build_artifact
    from effbench.models.registry import resolve

    cfg = tiny_cfg("tensorrt")
    spec = resolve(cfg.model, cfg.input_size)
    shape = (1, *spec.input_shape)
    art = build_artifact("onnx", ModelSource(spec), shape)
    s = get_backend("trt").load(art, cfg, shape)
    s.bind({spec.input_name: np.zeros(shape, np.float32)})
    layers = s.profile(5)
    assert layers and sum(lt.time_ms for lt in layers) > 0
    covered = {n for lt in layers for n in lt.nodes}
    assert any("Conv" in n for n in covered), [lt.__dict__ for lt in layers]
    s.close()
