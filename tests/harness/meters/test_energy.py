"""The energy-window logic, the counter/power cross-check, idle and dynamic arithmetic and
throttle-reason decoding, on the CPU.

The meter here is `RecordedMeter` (tests/harness/meters/recorded.py): it replays recorded counter and
power readings against a virtual clock. That is a recorded input, not a mock of the code under
test: `run_window`, `measure_idle`, `summarize` and `measure_energy` run unmodified over it.
Time steps are binary fractions (1/8 s, 1/16 s, 1/64 s) so the virtual clock is exact.
"""

import numpy as np
import pytest

from effbench.backends.nvml import decode_throttle_reasons
from effbench.backends.registry import get_backend
from effbench.core.settings import MeasureSettings
from effbench.errors import UsageError
from effbench.harness.config import RunConfig
from effbench.harness.meters import energy
from effbench.harness.meters.energy import (
    PollingSampler,
    default_windows,
    integrate_power,
    measure_idle,
    run_window,
    summarize,
)
from effbench.harness.options import parse_common

from .recorded import RecordedMeter, constant_power_traces, piecewise_traces

E_DT, P_DT, STEP_S = 1 / 64, 1 / 16, 1 / 8


def stepper(meter, seconds=STEP_S, iterations=10):
    """The workload: each chunk takes `seconds` of (virtual) device time and runs `iterations`."""

    def step():
        meter.advance(seconds)
        return iterations

    return step


def windows_over(meter, n=3, window_s=10.0, batch=8, hz=16):
    return [run_window(meter, stepper(meter), window_s, PollingSampler(meter, hz), batch) for _ in range(n)]


# --- integration -----------------------------------------------------------------------------------


def test_trapezoid_is_exact_on_a_linear_ramp():
    ramp = [(0.0, 0.0), (1.0, 1000.0), (2.0, 2000.0)]  # P(t) = t watts
    assert integrate_power(ramp, 0.0, 2.0) == pytest.approx(2.0)
    assert integrate_power(ramp, 0.5, 1.5) == pytest.approx(1.0)  # interpolated at both edges


def test_power_is_held_outside_the_samples_and_empty_windows_give_none():
    assert integrate_power([(1.0, 1000.0)], 0.0, 2.0) == pytest.approx(2.0)
    assert integrate_power([], 0.0, 1.0) is None
    assert integrate_power([(0.0, 5.0)], 1.0, 1.0) is None


# --- windows and the cross-check ------------------------------------------------------------------


def test_windows_from_the_counter_agree_with_integrated_power():
    e, p = constant_power_traces(250.0, 40.0, E_DT, P_DT)
    meter = RecordedMeter(e, p)
    ws = windows_over(meter)
    assert [w.seconds for w in ws] == [10.0, 10.0, 10.0]
    assert all(w.iterations == 800 and w.images == 6400 for w in ws)
    out = summarize(ws)
    assert out["available"] and not out["estimated"]
    assert out["joules_per_image"] == pytest.approx(250.0 * 10 / 6400)
    assert out["samples_j_per_image"] == pytest.approx([250.0 * 10 / 6400] * 3)
    assert out["std"] == pytest.approx(0.0, abs=1e-12)
    assert out["avg_power_w"] == pytest.approx(250.0)
    cc = out["cross_check"]
    assert cc["agree"] and cc["ratio_to_counter"] == pytest.approx(1.0)
    assert cc["joules_per_image"] == pytest.approx(out["joules_per_image"])
    assert not [w for w in out["warnings"] if "disagree" in w]


def test_more_than_five_percent_disagreement_warns():
    e, p = constant_power_traces(250.0, 40.0, E_DT, P_DT, power_scale=1.10)  # power reads 10% high
    out = summarize(windows_over(RecordedMeter(e, p)))
    assert out["cross_check"]["agree"] is False
    assert out["cross_check"]["ratio_to_counter"] == pytest.approx(1.10)
    assert any("disagree by 10.0%" in w for w in out["warnings"])
    assert out["joules_per_image"] == pytest.approx(250.0 * 10 / 6400)  # the counter stays the figure


def test_four_percent_disagreement_is_within_tolerance():
    e, p = constant_power_traces(250.0, 40.0, E_DT, P_DT, power_scale=0.96)
    out = summarize(windows_over(RecordedMeter(e, p)))
    assert out["cross_check"]["agree"] is True
    assert not [w for w in out["warnings"] if "disagree" in w]


def test_a_gpu_without_the_counter_gets_the_integrated_figure_labelled_estimated():
    _, p = constant_power_traces(120.0, 40.0, E_DT, P_DT)
    out = summarize(windows_over(RecordedMeter(energy=None, power=p)))
    assert out["estimated"] is True and "estimated" in out["method"]
    assert out["joules_per_image"] == pytest.approx(120.0 * 10 / 6400)
    assert "cross_check" not in out


def test_a_counter_that_goes_backwards_falls_back_to_integrated_power():
    e, p = constant_power_traces(100.0, 40.0, E_DT, P_DT)
    e = [(t, v if t < 5.0 else v - 4e6) for t, v in e]  # driver reload mid-window: counter restarts lower
    out = summarize(windows_over(RecordedMeter(e, p), n=1))
    assert out["estimated"] is True
    assert any("went backwards" in w for w in out["warnings"])


def test_spread_across_windows_is_reported_for_the_gate():
    # 200 W, then 220 W, then 240 W: three windows, three different figures
    e, p = piecewise_traces([(10.0, 200.0), (10.0, 220.0), (10.0, 240.0), (1.0, 240.0)], E_DT, P_DT)
    out = summarize(windows_over(RecordedMeter(e, p)))
    per = [w * 10 / 6400 for w in (200.0, 220.0, 240.0)]
    assert out["samples_j_per_image"] == pytest.approx(per)
    assert out["joules_per_image"] == pytest.approx(np.mean(per))
    assert out["std"] == pytest.approx(np.std(per, ddof=1))
    assert out["windows"] == 3


def test_one_window_says_there_is_no_spread():
    e, p = constant_power_traces(250.0, 20.0, E_DT, P_DT)
    out = summarize(windows_over(RecordedMeter(e, p), n=1))
    assert out["std"] is None
    assert any("one energy window only" in w for w in out["warnings"])


def test_no_completed_inference_is_unavailable():
    e, p = constant_power_traces(250.0, 20.0, E_DT, P_DT)
    meter = RecordedMeter(e, p)
    w = run_window(meter, lambda: (meter.advance(11.0), 0)[1], 10.0, PollingSampler(meter), 8)
    out = summarize([w])
    assert out["available"] is False and "no inference" in out["reason"]


# --- idle and dynamic energy ----------------------------------------------------------------------


def test_idle_power_and_the_dynamic_figure_which_is_never_subtracted():
    e, p = piecewise_traces([(2.0, 60.0), (31.0, 300.0)], E_DT, P_DT)
    meter = RecordedMeter(e, p)
    idle = measure_idle(meter, 1.5, PollingSampler(meter, 16))
    assert idle["seconds"] == pytest.approx(1.5)
    assert idle["idle_w"] == pytest.approx(60.0) and idle["method"] == "energy counter"
    assert idle["integrated_w"] == pytest.approx(60.0)
    meter.advance(0.5)  # the load starts at 2 s
    out = summarize(windows_over(meter), idle)
    assert out["joules_per_image"] == pytest.approx(300.0 * 10 / 6400)  # whole energy, idle included
    assert out["idle_w"] == pytest.approx(60.0)
    dyn = out["dynamic"]
    assert dyn["joules_per_image"] == pytest.approx((300.0 - 60.0) * 10 / 6400)
    assert "not subtracted" in dyn["label"]


def test_idle_without_a_counter_comes_from_power_samples():
    _, p = piecewise_traces([(2.0, 45.0), (1.0, 45.0)], E_DT, P_DT)
    meter = RecordedMeter(energy=None, power=p)
    idle = measure_idle(meter, 2.0, PollingSampler(meter, 16))
    assert idle["method"] == "integrated power" and idle["idle_w"] == pytest.approx(45.0)


# --- throttle reasons -----------------------------------------------------------------------------


def test_throttle_reason_masks_decode_to_names():
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x1) == ["gpu_idle"]
    assert decode_throttle_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert decode_throttle_reasons(0x800 | 0x8) == ["hw_slowdown", "unknown_0x800"]


def test_reasons_seen_during_a_window_are_collected_and_throttling_warns():
    e, p = constant_power_traces(250.0, 40.0, E_DT, P_DT)
    reasons = [(0.0, 0x0), (5.0, 0x4 | 0x40), (6.0, 0x0), (12.0, 0x1)]
    out = summarize(windows_over(RecordedMeter(e, p, reasons), n=2))
    assert out["throttle_reasons_seen"] == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]
    assert any("sw_power_cap, hw_thermal_slowdown" in w for w in out["warnings"])


# --- window count ---------------------------------------------------------------------------------


def test_default_window_count():
    assert default_windows(10.0) == 3
    assert default_windows(30.0) == 3
    assert default_windows(5.0) == 2


# --- measure_energy end to end over a recorded meter ----------------------------------------------


class VirtualSession:
    """A session whose inferences take `latency_s` of the recorded meter's virtual time."""

    def __init__(self, meter, latency_s=1 / 256):
        self.meter, self.latency_s = meter, latency_s
        self.runtime_info = {"host_vs_device": "from the latency loop"}
        self.calls = 0

    def timed_loop(self, n, out, offset=0):
        self.meter.advance(n * self.latency_s)
        out[offset : offset + n] = int(self.latency_s * 1e9)
        self.calls += 1
        self.runtime_info["host_vs_device"] = f"energy chunk {self.calls}"


def cfg(**kw):
    """The energy plan a worker reads from the cell's MeasureSettings, made from run options as
    prepare makes it (typed --opt values, never strings)."""
    base = dict(model="m", backend="torch", device="cuda:0", batch_size=4, energy_window_s=5.0, options={"idle_s": "1"})
    base.update(kw)
    return plan_of(RunConfig(**base))


def plan_of(c: RunConfig) -> energy.EnergyPlan:
    settings = MeasureSettings(
        runtime=c.backend,
        input_shape=[c.batch_size, 3, 8, 8],
        device=c.device,
        meters=energy.meter_options(parse_common(c.options), c.energy_window_s, get_backend(c.backend).does_work),
    )
    return energy.EnergyPlan.of(settings)


def test_measure_energy_runs_idle_then_windows_after_the_latency_run(monkeypatch):
    e, p = piecewise_traces([(1.0, 50.0), (20.0, 200.0)], E_DT, P_DT)
    meter = RecordedMeter(e, p)
    monkeypatch.setattr(energy, "open_meter", lambda device: (meter, None))
    session = VirtualSession(meter)
    events = []
    out = energy.measure_energy(session, cfg(), lambda *a: events.append(a))
    assert out["available"] is True, out
    assert out["windows"] == 2  # a 5 s window: two windows by default
    assert all(s >= 5.0 for s in out["window_s"])
    assert out["joules_per_image"] == pytest.approx(200.0 * (1 / 256) / 4, rel=1e-3)
    assert out["idle_w"] == pytest.approx(50.0)
    assert out["config"]["windows"] == 2 and out["config"]["idle_s"] == 1.0
    assert session.runtime_info["host_vs_device"] == "from the latency loop"  # not the energy chunks
    assert [ev[0] for ev in events] and all(ev[0] == "energy" for ev in events)


def test_energy_windows_option_overrides_the_default(monkeypatch):
    e, p = constant_power_traces(100.0, 60.0, E_DT, P_DT)
    meter = RecordedMeter(e, p)
    monkeypatch.setattr(energy, "open_meter", lambda device: (meter, None))
    out = energy.measure_energy(
        VirtualSession(meter), cfg(energy_window_s=2.0, options={"idle_s": "0", "energy_windows": "4"})
    )
    assert out["windows"] == 4 and len(out["samples_j_per_image"]) == 4
    assert out["idle_w"] is None and "dynamic" not in out


def test_bad_energy_options_are_refused_before_any_work():
    with pytest.raises(UsageError, match="energy_windows"):
        cfg(options={"energy_windows": "many"})


def test_energy_can_be_switched_off_and_is_skipped_for_the_null_backend(monkeypatch):
    e, p = piecewise_traces([(2.0, 40.0)], E_DT, P_DT)
    monkeypatch.setattr(energy, "open_meter", lambda device: (RecordedMeter(e, p), None))
    out = energy.measure_energy(None, cfg(options={"energy": "0"}))
    assert out == {"available": False, "reason": "energy not measured (--opt energy=0 given)"}
    assert "null backend" in energy.measure_energy(None, cfg(backend="null"))["reason"]


def test_cpu_energy_is_opt_in(monkeypatch):
    """RAPL windows add tens of seconds to a CPU cell: without --opt energy=1 the result says how."""
    e, p = piecewise_traces([(2.0, 40.0)], E_DT, P_DT)
    monkeypatch.setattr(energy, "open_meter", lambda device: (RecordedMeter(e, p), None))
    out = energy.measure_energy(None, cfg(device="cpu"))
    assert out["available"] is False and "--opt energy=1" in out["reason"]
    assert energy.idle_before_run(cfg(device="cpu")) is None


def test_devices_without_a_meter_say_so():
    out = energy.measure_energy(None, cfg(device="mps"))
    assert out == {"available": False, "reason": "energy unavailable: no energy meter for device 'mps'"}


def test_idle_can_be_measured_before_the_run_and_passed_in(monkeypatch):
    e, p = piecewise_traces([(2.0, 40.0), (30.0, 150.0)], E_DT, P_DT)
    meter = RecordedMeter(e, p)
    monkeypatch.setattr(energy, "open_meter", lambda device: (meter, None))
    idle = energy.idle_before_run(cfg(options={"idle_s": "1.5"}))
    assert idle["idle_w"] == pytest.approx(40.0) and idle["when"] == "before the model was loaded"
    meter.advance(0.5)
    out = energy.measure_energy(VirtualSession(meter), cfg(options={"idle_s": "1"}), idle=idle)
    assert out["idle"]["when"] == "before the model was loaded" and out["idle_w"] == pytest.approx(40.0)
    assert energy.idle_before_run(cfg(options={"energy": "0"})) is None
