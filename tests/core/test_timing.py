"""The timing loops' stopping rules, on a session whose cost is known."""

import time

import numpy as np
import pytest

from effbench.core.scenarios import run_scenario
from effbench.core.session import Session
from effbench.core.settings import MeasureSettings
from effbench.core.timing import measure, warmup

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone


class Busy(Session):
    def __init__(self, us: float):
        super().__init__()
        self.ns, self.calls = int(us * 1000), 0

    def bind(self, inputs):
        pass

    def run(self):
        self.calls += 1
        end = time.perf_counter_ns() + self.ns
        while time.perf_counter_ns() < end:
            pass

    def outputs(self):
        return []


def test_measure_meets_duration_and_count():
    s = Busy(50)
    samples, secs, reached, met = measure(s, 0.05, 500)
    assert samples.size >= 500 and secs >= 0.05 and samples.dtype == np.int64
    assert reached is None and met is None
    assert np.median(samples) >= 50_000  # each sample covers one busy-wait of 50 µs


def test_target_ci_and_max_iters():
    s = Busy(20)
    _, _, reached, met = measure(s, 0.01, 5, target_ci=0.5, max_duration_s=1)
    assert met is True and reached <= 0.5
    samples, secs, _, _ = measure(s, 10.0, 5, max_iters=123)
    assert samples.size == 123 and secs < 5
    done, wsecs = warmup(s, 0.02, 7)
    assert done >= 7 and wsecs >= 0.02


def test_run_scenario_follows_the_settings():
    s = Busy(10)
    m = run_scenario(
        s,
        MeasureSettings(
            runtime="null", input_shape=[1], warmup_s=0.0, warmup_iters=13, duration_s=30.0, min_iters=3, max_iters=77
        ),
    )
    assert m.warmup_iters >= 13 and m.samples_ns.size == 77 and m.first_ns > 0
    assert any("max-iters 77" in n for n in m.notes)
