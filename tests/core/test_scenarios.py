"""Scenarios as registered strategies: the registry, a scenario added by a test, and the sustained
scenario finding a slowdown injected part-way (the null backend's busy-wait growing) at the right
time."""

from __future__ import annotations

import numpy as np
import pytest

from effbench.backends.null_backend import NullSession
from effbench.core.scenarios import SCENARIOS, Context, Scenario, Timed, get_scenario, register, run_scenario
from effbench.core.scenarios.sustained import _Kept, onset, ratio_ci, verdict
from effbench.core.session import CoreError
from effbench.core.settings import MeasureSettings


def _settings(**kw) -> MeasureSettings:
    base = dict(runtime="null", input_shape=[1, 3, 8, 8], warmup_s=0.0, warmup_iters=2)
    base.update(kw)
    return MeasureSettings(**base)


def test_the_built_ins_are_registered_and_an_unknown_name_is_named():
    assert {"latency", "throughput", "sustained"} <= set(SCENARIOS)
    with pytest.raises(CoreError) as e:
        get_scenario("sustaind")
    assert e.value.kind == "bad_option" and "sustained" in e.value.message


def test_a_new_scenario_is_one_class_and_its_registration():
    @register
    class Fixed(Scenario):
        name = "fixed-count"
        help = "exactly 17 inferences"

        def measure(self, session, settings, ctx: Context) -> Timed:
            buf = np.empty(17, dtype=np.int64)
            session.timed_loop(17, buf, 0)
            return Timed(buf, float(buf.sum()) / 1e9, summary={"count": 17})

    try:
        m = run_scenario(NullSession(0), _settings(scenario="fixed-count"))
        assert m.samples_ns.size == 17 and m.summary == {"count": 17} and m.warmup_iters >= 2
    finally:
        del SCENARIOS["fixed-count"]


def test_kept_samples_stay_bounded_and_spread_over_the_window():
    kept = _Kept(1000)
    for start in range(0, 100_000, 997):
        kept.add(np.arange(start, min(start + 997, 100_000), dtype=np.int64))
    s = kept.samples()
    assert kept.seen == 100_000 and 500 <= s.size <= 1000
    assert s[0] < 500 and s[-1] > 99_000 and np.all(np.diff(s) > 0)  # first to last, in order
    gaps = np.diff(s)
    assert gaps.max() <= 2 * np.median(gaps) + 1  # evenly spread


def _window(i, median, half=0.01):
    return {"start_s": float(i), "median_ms": median, "ci95_low": median - half, "ci95_high": median + half}


def test_onset_is_the_window_from_which_the_median_stays_out_of_the_first_ones_ci():
    steady_then_slow = [_window(0, 1.0), _window(1, 1.005), _window(2, 1.3), _window(3, 1.02), _window(4, 1.4)]
    assert onset(steady_then_slow)["window"] == 4  # window 3 came back: the change is for good from 4
    assert onset([_window(0, 1.0), _window(1, 1.0), _window(2, 1.0)]) is None
    faster = onset([_window(0, 1.0), _window(1, 0.8), _window(2, 0.8)])
    assert faster["window"] == 1 and faster["direction"] == "faster"
    r = ratio_ci(_window(0, 1.0), _window(1, 2.0))
    assert r["ci95_low"] < 2.0 < r["ci95_high"] and r["ratio"] == 2.0
    v = verdict(
        [
            dict(_window(0, 1.0), telemetry={"cpu_mhz": 2400, "hottest_c": 50}),
            dict(_window(1, 1.5), telemetry={"cpu_mhz": 1600, "hottest_c": 81}),
        ]
    )
    assert v["throttled"] and "CPU clock 2400 -> 1600 MHz" in v["evidence"] and "hottest 50 -> 81 C" in v["evidence"]


@pytest.mark.serial  # asserts when a timed slowdown shows
def test_sustained_finds_a_slowdown_injected_part_way_at_the_right_onset():
    # 200 us per inference, twice that from 1.1 s on, windows of 0.5 s over 3 s. Windows are timed by
    # the wall clock, which a loaded machine stretches: the onset must be the window holding 1.1 s
    # (when mostly slow) or the next one, never earlier, never later.
    slow_at = 1.1
    session = NullSession(200_000, slow_after_s=slow_at, slow_factor=2.0)
    m = run_scenario(session, _settings(scenario="sustained", duration_s=3.0, window_s=0.5, warmup_iters=1))
    s, w = m.summary, m.summary["windows"]
    assert len(w) == 6 and s["onset"] is not None
    k = s["onset"]["window"]
    assert k >= 1 and w[k - 1]["start_s"] <= slow_at <= w[k]["start_s"] + w[k]["seconds"], (k, w)
    assert s["onset"]["s"] == w[k]["start_s"] and s["onset"]["direction"] == "slower"
    assert s["throttled"] is True and 1.6 < s["last_first"]["ratio"] < 2.5
    assert s["windows"][0]["median_ms"] == pytest.approx(0.2, rel=0.2)
    assert all(w["throughput_per_s"] > 0 for w in s["windows"])
    assert any(n.startswith("throttled: ") for n in m.notes)


@pytest.mark.serial
def test_sustained_on_a_steady_session_is_not_throttled():
    m = run_scenario(NullSession(100_000), _settings(scenario="sustained", duration_s=1.2, window_s=0.3))
    assert m.summary["throttled"] is False and m.summary["onset"] is None
    assert 0.8 < m.summary["last_first"]["ratio"] < 1.25


def test_sustained_refuses_windows_that_do_not_fit_the_duration():
    sustained = get_scenario("sustained")
    assert "fewer than 2 windows" in sustained.check(_settings(scenario="sustained", duration_s=60, window_s=90))
    assert sustained.check(_settings(scenario="sustained", duration_s=600, window_s=60)) is None
    assert sustained.check(_settings(scenario="sustained", duration_s=30)) is None  # default: a tenth
