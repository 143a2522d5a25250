"""The OpenVINO session keeps no Python-owned memory or callbacks inside the compiled model: its
stream threads would release them, needing the GIL, while the main thread holds the GIL in the
compiled model's destructor joining those threads (a deadlock seen in the suite)."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino")

from effbench.core.runtimes.openvino import open_session  # noqa: E402
from effbench.core.settings import MeasureSettings  # noqa: E402

SHAPE = [2, 8, 16, 16]


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    import openvino.opset13 as ops

    x = ops.parameter(SHAPE, np.float32, name="x")
    w = ops.constant(np.random.default_rng(0).standard_normal((8, 8, 3, 3)).astype(np.float32))
    y = ops.relu(ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]))
    path = tmp_path_factory.mktemp("ov") / "conv.xml"
    ov.save_model(ov.Model([y], [x]), str(path))
    return str(path)


def _session(ir: str, scenario: str):
    settings = MeasureSettings(
        runtime="openvino", input_shape=SHAPE, scenario=scenario, threads=2, runtime_options={"streams": 2}
    )
    return open_session(ir, settings)


def test_bound_inputs_are_copies_owned_by_openvino(ir):
    session = _session(ir, "latency")
    x = np.ones(SHAPE, np.float32)
    session.bind({"x": x})
    bound = session.request.get_input_tensor(0).data
    assert not np.shares_memory(bound, x)
    x[:] = 7  # the caller's array may change or go away: what runs is the copy
    session.run()
    assert float(session.request.get_input_tensor(0).data.max()) == 1.0
    session.close()
    assert session.compiled is None and session.request is None and session._start is None


def test_throughput_keeps_every_request_busy_and_counts_each_completion(ir):
    session = _session(ir, "throughput")
    session.bind({"x": np.ones(SHAPE, np.float32)})
    run = session.run_throughput(duration_s=0.0, min_iters=11, requests=3)
    # duration 0: exactly the starts min_iters asks for, each waited for once, none counted twice
    assert len(run.request_latencies_ms) == 11
    assert run.images == 11 * SHAPE[0]
    assert run.requests_in_flight == 3 and run.info["streams"] == 2
    assert all(lat > 0 for lat in run.request_latencies_ms)
    longer = session.run_throughput(duration_s=0.2, min_iters=1, requests=3)
    assert longer.seconds >= 0.2 and len(longer.request_latencies_ms) > 3
    session.close()
