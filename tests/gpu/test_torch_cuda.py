"""torch on a CUDA device: CUDA-event timing, CUDA graphs, fp16/bf16, TF32, GPU memory."""

import numpy as np
import pytest
import torch

from effbench.backends.cuda_util import tf32_capable
from tests.gpu._requirements import device_memory, needs_cuda, open_session, run_cell, tiny_cfg

pytestmark = needs_cuda


def run(**kw):
    return run_cell(tiny_cfg("torch", **kw))


def test_fp32_cell_times_with_cuda_events_and_reports_gpu_memory():
    r = run()
    assert r.status == "ok" and r.parity is not None and r.parity.ok, r.parity
    assert r.precision_ran == "fp32"
    assert r.runtime["timing"] == "cuda_events"
    assert r.runtime["allow_tf32"] == {"matmul": False, "cudnn": False}
    hv = r.runtime["host_vs_device"]
    assert hv["iterations"] >= r.iterations and hv["device_s"] > 0
    dev = device_memory(r)
    assert dev["peak_allocated_mb"] > 0 and "after_load_allocated_mb" in dev
    assert all(s > 0 for s in r.samples_ms)


def test_cuda_graph_replays_and_matches_the_reference():
    r = run(cuda_graph=True)
    assert r.status == "ok" and r.parity is not None and r.parity.ok
    assert r.runtime["cuda_graph_captured"] is True
    assert r.runtime["first_inference_eager_ms"] > 0


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precisions_run_as_asked(precision):
    r = run(precision=precision, channels_last=True)
    assert r.status == "ok" and r.precision_ran == precision and r.parity is not None and r.parity.ok, r.parity
    assert r.runtime["channels_last"] is True


def test_tf32_is_off_unless_asked_and_recorded_when_on():
    r = run(options={"tf32": "1"})
    assert r.runtime["allow_tf32"] == {"matmul": True, "cudnn": True}
    assert r.precision_ran == ("tf32" if tf32_capable(0) else "fp32")
    assert torch.backends.cuda.matmul.allow_tf32 is False  # restored on close


def test_timed_loop_writes_one_device_time_per_inference():
    cell, s = open_session(tiny_cfg("torch"))
    try:
        s.bind({cell.input_name: np.zeros(cell.settings.input_shape, np.float32)})
        buf = np.zeros(40, np.int64)
        s.timed_loop(20, buf, 10)
        assert (buf[:10] == 0).all() and (buf[10:30] > 0).all() and (buf[30:] == 0).all()
        layers = s.profile(3)
        assert layers and all(lt.time_ms >= 0 for lt in layers)
    finally:
        s.close()
