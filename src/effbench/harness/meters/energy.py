"""Energy per image from hardware counters, measured in windows of its own after the latency run.

Never inside the timed latency loop: the runner calls `measure_energy` after measurement, and it
runs the session's own `timed_loop` for repeated windows of at least `EnergyPlan.energy_window_s`.

CUDA cells (NVML, `nvml.py`):
  - primary figure: the cumulative energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ,
    Volta and later) read at the start and end of each window;
  - cross-check: power samples (nvmlDeviceGetPowerUsage) taken by a thread at 10-20 Hz and
    integrated by trapezoid over the same window; a warning when they disagree by more than 5%;
  - GPUs without the counter get the integrated figure, labelled estimated;
  - idle power is measured for a couple of seconds before the windows and reported apart, with a
    labelled "dynamic" figure (energy minus idle power x time) that is never silently subtracted;
  - temperature before/after, clocks, clock-throttle reasons seen during the windows, power
    limit, driver and CUDA versions, and the GPU UUID (the CUDA device matched to NVML by UUID).
CPU cells (RAPL, `rapl.py`): package energy counters, wraparound handled, no power cross-check.
Everything else: {"available": False, "reason": ...}.

The window logic is pure functions over a meter interface (read_energy_mj(), read_power_mw(),
read_reasons(), clock(), sleep()), so it is tested on the CPU with recorded counter readings.

Options (`--opt KEY=VALUE`): energy=0 (skip), energy_windows=N (default 3 windows of
--energy-window seconds, 2 when the window is shortened below 10 s), idle_s=S (default 5; NVML
measures at least 5 s), power_hz=HZ (default 20, clamped to 1..50).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

IDLE_S = 5.0
TOLERANCE = 0.05  # counter vs integrated power: warn beyond this relative disagreement
DEFAULT_WINDOW_S = 10.0
_THROTTLING = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}


class Meter(Protocol):
    has_counter: bool

    def read_energy_mj(self) -> float | None: ...

    def read_power_mw(self) -> float | None: ...

    def read_reasons(self) -> int: ...

    def clock(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


# --- power traces ---------------------------------------------------------------------------------


@dataclass
class PowerTrace:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (clock s, milliwatts)
    reasons: int = 0  # OR of every clocks-event reason mask seen


class PollingSampler:
    """Samples power when polled (at most `hz` times a second), plus once at start and at stop.

    Deterministic: used with recorded meters in tests, and where no thread is wanted."""

    def __init__(self, meter: Meter, hz: float = 20.0):
        self.meter, self.period = meter, 1.0 / hz
        self.trace = PowerTrace()
        self._next = 0.0

    def _sample(self) -> None:
        t = self.meter.clock()
        mw = self.meter.read_power_mw()
        if mw is not None:
            self.trace.samples.append((t, float(mw)))
        self.trace.reasons |= int(self.meter.read_reasons() or 0)
        self._next = t + self.period

    def start(self) -> None:
        self.trace = PowerTrace()
        self._sample()

    def poll(self) -> None:
        if self.meter.clock() >= self._next:
            self._sample()

    def stop(self) -> PowerTrace:
        self._sample()
        return self.trace


class ThreadSampler(PollingSampler):
    """Samples from a background thread every 1/hz seconds while the workload runs."""

    def __init__(self, meter: Meter, hz: float = 20.0):
        super().__init__(meter, hz)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        with self._lock:
            super()._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._sample()
            except Exception:  # a failed reading loses one sample, never the window
                pass

    def start(self) -> None:
        super().start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="effbench-power", daemon=True)
        self._thread.start()

    def poll(self) -> None:
        pass

    def stop(self) -> PowerTrace:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return super().stop()


# --- windows --------------------------------------------------------------------------------------


@dataclass
class Window:
    t0: float
    t1: float
    e0_mj: float | None
    e1_mj: float | None
    trace: PowerTrace
    iterations: int
    images: int

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    @property
    def counter_mj(self) -> float | None:
        """Energy the counter saw over the window (None without counter readings)."""
        return None if self.e0_mj is None or self.e1_mj is None else self.e1_mj - self.e0_mj


def integrate_power(samples: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Joules over [t0, t1] from (seconds, milliwatts) samples by the trapezoid rule.

    Inside the samples' span the power is interpolated linearly; before the first or after the
    last sample it is held at the nearest sample. None without samples or for an empty window.
    """
    if not samples or t1 <= t0:
        return None
    pts = sorted(samples)
    ts = np.array([p[0] for p in pts], dtype=np.float64)
    ws = np.array([p[1] for p in pts], dtype=np.float64) / 1000.0
    inside = (ts > t0) & (ts < t1)
    grid = np.concatenate([[t0], ts[inside], [t1]])
    power = np.interp(grid, ts, ws)  # holds the end values outside the samples' span
    return float(np.sum((power[1:] + power[:-1]) / 2.0 * np.diff(grid)))


def run_window(meter: Meter, step: Callable[[], int], window_s: float, sampler: PollingSampler, batch: int) -> Window:
    """Run `step` (one chunk of inferences; returns how many it ran) until at least `window_s`
    has passed, reading the energy counter at both ends and sampling power throughout."""
    sampler.start()
    e0 = meter.read_energy_mj()
    t0 = meter.clock()
    iterations = 0
    while True:
        iterations += int(step())
        sampler.poll()
        if meter.clock() - t0 >= window_s:
            break
    t1 = meter.clock()
    e1 = meter.read_energy_mj()
    trace = sampler.stop()
    return Window(t0, t1, e0, e1, trace, iterations, iterations * batch)


def measure_idle(meter: Meter, seconds: float, sampler: PollingSampler) -> dict[str, Any]:
    """Idle power over `seconds` with nothing running: from the counter when there is one (the
    power samples as a second opinion), else from the integrated samples."""
    sampler.start()
    e0 = meter.read_energy_mj()
    t0 = meter.clock()
    while True:
        left = seconds - (meter.clock() - t0)
        if left <= 0:
            break
        meter.sleep(min(left, sampler.period))
        sampler.poll()
    t1 = meter.clock()
    e1 = meter.read_energy_mj()
    trace = sampler.stop()
    dt = t1 - t0
    out: dict[str, Any] = {"seconds": round(dt, 3)}
    counter_w = (e1 - e0) / 1000.0 / dt if e0 is not None and e1 is not None and dt > 0 and e1 >= e0 else None
    integ = integrate_power(trace.samples, t0, t1)
    integ_w = integ / dt if integ is not None and dt > 0 else None
    out["idle_w"] = counter_w if counter_w is not None else integ_w
    out["method"] = "energy counter" if counter_w is not None else ("integrated power" if integ_w is not None else None)
    out["counter_w"] = _r(counter_w)
    out["integrated_w"] = _r(integ_w)
    out["idle_w"] = _r(out["idle_w"])
    return out


def idle_seconds(plan: EnergyPlan, meter: Any) -> float:
    """--opt idle_s (0: no idle measurement), raised to the meter's own minimum (NVML: 5 s, since
    its power readings are 1 s averages)."""
    seconds = plan.idle_s
    return max(seconds, float(getattr(meter, "min_idle_s", 0.0))) if seconds > 0 else 0.0


def default_windows(window_s: float) -> int:
    """3 windows at the default 10 s or longer; 2 when the user shortened the window."""
    return 3 if window_s >= DEFAULT_WINDOW_S else 2


def _r(v: float | None, nd: int = 6) -> float | None:
    return None if v is None else round(float(v), nd)


def _spread(values: list[float]) -> dict[str, Any]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) >= 2 else None
    return {"mean": mean, "std": std, "cv": (std / mean) if std is not None and mean else None}


def summarize(
    windows: list[Window],
    idle: dict[str, Any] | None = None,
    tolerance: float = TOLERANCE,
    counter_name: str = "energy counter",
) -> dict[str, Any]:
    """The energy record from finished windows (pure: no meter, no clock).

    joules_per_image is the counter's figure when every window has both counter readings,
    otherwise the integrated power's, then labelled estimated. The dynamic figure subtracts idle
    power x time and is reported apart, never in place of joules_per_image.
    """
    from effbench.backends.nvml import decode_throttle_reasons

    warnings: list[str] = []
    windows = [w for w in windows if w.images > 0 and w.seconds > 0]
    if not windows:
        return {"available": False, "reason": "energy unavailable: no inference completed in the energy windows"}
    deltas = [w.counter_mj for w in windows]
    use_counter = all(d is not None for d in deltas)
    if use_counter and any(d is not None and d < 0 for d in deltas):
        warnings.append(
            "the energy counter went backwards during a window (driver reloaded?): using integrated power instead"
        )
        use_counter = False
    counter_j = [d / 1000.0 for d in deltas if d is not None] if use_counter else []
    integrated = [integrate_power(w.trace.samples, w.t0, w.t1) for w in windows]
    have_integ = all(v is not None for v in integrated)
    integ_j = [v for v in integrated if v is not None]
    if use_counter:
        primary = counter_j
        method, estimated = counter_name, False
    elif have_integ:
        primary = integ_j
        method, estimated = "integrated power samples (estimated: no energy counter)", True
    else:
        return {
            "available": False,
            "reason": "energy unavailable: the meter gave neither energy counter readings nor power samples",
        }

    images = [w.images for w in windows]
    seconds = [w.seconds for w in windows]
    per_image = [j / n for j, n in zip(primary, images)]
    spread = _spread(per_image)
    out: dict[str, Any] = {
        "available": True,
        "method": method,
        "estimated": estimated,
        "joules_per_image": _r(spread["mean"], 9),
        "samples_j_per_image": [_r(v, 9) for v in per_image],
        "std": _r(spread["std"], 9),
        "cv": _r(spread["cv"]),
        "windows": len(windows),
        "window_s": [_r(s, 4) for s in seconds],
        "images": images,
        "joules": [_r(j, 4) for j in primary],
        "avg_power_w": _r(sum(primary) / sum(seconds), 3),
    }
    if len(windows) < 2:
        warnings.append("one energy window only: no spread (use --opt energy_windows=3)")

    # cross-check: the counter against the integrated power samples
    if use_counter and have_integ:
        ratios = [i / c if c > 0 else None for i, c in zip(integ_j, counter_j)]
        total_ratio = sum(integ_j) / sum(counter_j) if sum(counter_j) > 0 else None
        n_samples = [len(w.trace.samples) for w in windows]
        out["cross_check"] = {
            "method": "power samples integrated by trapezoid over the same windows",
            "joules_per_image": _r(statistics.fmean(i / n for i, n in zip(integ_j, images)), 9),
            "samples_j_per_image": [_r(i / n, 9) for i, n in zip(integ_j, images)],
            "ratio_to_counter": _r(total_ratio, 4),
            "window_ratios": [_r(r, 4) for r in ratios],
            "power_samples": n_samples,
            "sample_hz": _r(statistics.fmean(n / s for n, s in zip(n_samples, seconds)), 2),
            "tolerance": tolerance,
        }
        bad = [(k, r) for k, r in enumerate(ratios) if r is None or abs(r - 1.0) > tolerance]
        out["cross_check"]["agree"] = not bad
        if bad:
            worst = max(bad, key=lambda kr: abs((kr[1] or 0) - 1.0))
            pct = abs((worst[1] or 0) - 1.0) * 100
            warnings.append(
                f"energy counter and integrated power disagree by {pct:.1f}% in window {worst[0] + 1} "
                f"(more than {tolerance:.0%}); the counter figure is reported. Short windows and "
                "GPUs whose power reading is a 1 s average disagree at the window edges"
            )
    elif use_counter:
        out["cross_check"] = None  # this meter has no power reading (RAPL)

    # idle and dynamic energy, labelled, never subtracted from joules_per_image
    if idle and idle.get("idle_w") is not None:
        idle_w = float(idle["idle_w"])
        dyn = [(j - idle_w * s) / n for j, s, n in zip(primary, seconds, images)]
        out["idle_w"] = _r(idle_w, 3)
        out["idle"] = idle
        out["dynamic"] = {
            "label": "dynamic energy: measured energy minus idle power x window time (not subtracted "
            "from joules_per_image)",
            "joules_per_image": _r(statistics.fmean(dyn), 9),
            "samples_j_per_image": [_r(v, 9) for v in dyn],
        }
    else:
        out["idle_w"] = None

    reasons = 0
    for w in windows:
        reasons |= w.trace.reasons
    seen = decode_throttle_reasons(reasons)
    out["throttle_reasons_seen"] = seen
    throttled = [r for r in seen if r in _THROTTLING]
    if throttled:
        warnings.append(f"clocks were held back during the energy windows: {', '.join(throttled)}")
    out["warnings"] = warnings
    return out


# --- the runner's entry point ---------------------------------------------------------------------


class _Workload:
    """One chunk of the session's own timed loop (about `target_s` long on `clock`) per call."""

    def __init__(self, session, clock: Callable[[], float] = time.perf_counter, target_s: float = 0.05):
        self.session, self.clock, self.target_s = session, clock, target_s
        self.chunk = 1
        self.buf = np.zeros(1, dtype=np.int64)

    def __call__(self) -> int:
        n = self.chunk
        if self.buf.size < n:
            self.buf = np.zeros(n, dtype=np.int64)
        t0 = self.clock()
        self.session.timed_loop(n, self.buf, 0)
        per = (self.clock() - t0) / n
        self.chunk = max(1, min(100_000, int(self.target_s / max(per, 1e-7))))
        return n


@dataclass(frozen=True)
class EnergyPlan:
    """What the energy windows need, read from the cell's MeasureSettings (`meters`: the typed
    `--opt energy*`, `idle_s`, `power_hz` values and `--energy-window`), never from option strings."""

    device: str
    backend: str
    batch_size: int
    energy_window_s: float = 10.0
    energy: bool | None = None  # None: on for CUDA, off for the CPU (RAPL)
    energy_windows: int | None = None
    idle_s: float = IDLE_S
    power_hz: float = 20.0
    does_work: bool = True  # the backend's trait: one that does no work (null) is not metered

    @classmethod
    def of(cls, settings: Any) -> EnergyPlan:
        m = dict(settings.meters or {})
        batch = int(settings.input_shape[0]) if settings.input_shape else 1
        return cls(settings.device, settings.runtime, batch, **{k: v for k, v in m.items() if v is not None})


def meter_options(common: Any, energy_window_s: float, does_work: bool = True) -> dict[str, Any]:
    """MeasureSettings.meters of the harness's typed common options (harness/options.CommonOptions)
    and the backend's `does_work` trait."""
    return {
        "does_work": does_work,
        "energy_window_s": float(energy_window_s),
        "energy": common.energy,
        "energy_windows": common.energy_windows,
        "idle_s": common.idle_s,
        "power_hz": common.power_hz,
    }


def open_meter(device: str):
    """(meter, reason): NVML for cuda devices, RAPL for the CPU, else why not."""
    kind = device.split(":")[0]
    if kind == "cuda":
        from effbench.backends import nvml

        return nvml.open_meter(device)
    if kind == "cpu":
        from effbench.harness.meters import rapl

        return rapl.open_meter()
    return None, f"energy unavailable: no energy meter for device {device!r}"


def energy_enabled(plan: EnergyPlan) -> bool:
    """On by default on GPUs; CPU package energy (RAPL) is opt-in with --opt energy=1, since its
    windows add tens of seconds to every CPU cell."""
    return plan.energy if plan.energy is not None else str(plan.device).startswith("cuda")


def idle_before_run(plan: EnergyPlan) -> dict[str, Any] | None:
    """Idle power of plan.device measured now (call it before loading the model), for
    `measure_energy(..., idle=...)`; None where there is no meter or energy is off."""
    if not energy_enabled(plan) or not plan.does_work:
        return None
    meter, _ = open_meter(plan.device)
    if meter is None:
        return None
    try:
        seconds = idle_seconds(plan, meter)
        hz = min(50.0, max(1.0, plan.power_hz))
        sampler = ThreadSampler(meter, hz) if getattr(meter, "has_power", False) else PollingSampler(meter, hz)
        idle = measure_idle(meter, seconds, sampler)
        idle["when"] = "before the model was loaded"
        return idle
    except Exception:
        return None
    finally:
        meter.close()


def measure_energy(session, plan: EnergyPlan, event=None, idle: dict[str, Any] | None = None) -> dict[str, Any]:
    """Energy per image of `session` on plan.device, or {"available": False, "reason": ...}.

    `idle`: an idle measurement taken earlier (e.g. before the latency run, from `measure_idle`);
    without it idle power is measured here, just before the windows.
    """
    event = event or (lambda *a: None)
    if not plan.does_work:
        return {"available": False, "reason": f"energy not measured for the {plan.backend} backend (it does no work)"}
    meter, reason = open_meter(plan.device)
    if meter is None:
        return {"available": False, "reason": reason}
    if not energy_enabled(plan):
        meter.close()
        how = "--opt energy=1 to measure it" if not str(plan.device).startswith("cuda") else "--opt energy=0 given"
        return {"available": False, "reason": f"energy not measured ({how})"}
    saved_info = dict(getattr(session, "runtime_info", {}) or {})
    try:
        return _measure(session, plan, event, meter, idle)
    except Exception as e:  # the latency result stands; energy says why it is missing
        from effbench.errors import UsageError

        if isinstance(e, UsageError):
            return {"available": False, "reason": f"energy not measured: {e}"}
        return {"available": False, "reason": f"energy measurement failed: {type(e).__name__}: {e}"}
    finally:
        # the energy windows' chunks must not show up in the latency loop's host/device figures
        info = getattr(session, "runtime_info", None)
        if isinstance(info, dict) and "host_vs_device" in saved_info:
            info["host_vs_device"] = saved_info["host_vs_device"]
        meter.close()


def _measure(session, plan: EnergyPlan, event, meter, idle) -> dict[str, Any]:
    window_s = float(plan.energy_window_s)
    n_windows = plan.energy_windows or default_windows(window_s)
    if n_windows < 1:
        from effbench.errors import UsageError

        raise UsageError("--opt energy_windows must be at least 1")
    idle_s = idle_seconds(plan, meter)
    hz = min(50.0, max(1.0, plan.power_hz))
    is_gpu = getattr(meter, "kind", "") == "nvml"
    sampler_cls = ThreadSampler if getattr(meter, "has_power", False) else PollingSampler

    before = meter.snapshot() if is_gpu else None
    if idle is None and idle_s > 0:
        event("energy", 0.0, f"idle power {idle_s:g} s")
        idle = measure_idle(meter, idle_s, sampler_cls(meter, hz))
        idle["when"] = "just before the energy windows (after the latency run)"
    windows = []
    clocks: list[tuple[int | None, int | None]] = []
    step = _Workload(session, meter.clock)
    for k in range(n_windows):
        event("energy", k / n_windows, f"window {k + 1}/{n_windows} ({window_s:g} s)")
        windows.append(run_window(meter, step, window_s, sampler_cls(meter, hz), plan.batch_size))
        if is_gpu:
            clocks.append(meter.clocks())
    event("energy", 1.0, f"{n_windows} window(s)")
    after = meter.snapshot() if is_gpu else None

    counter_name = (
        "energy counter (nvmlDeviceGetTotalEnergyConsumption)" if is_gpu else "RAPL package energy counter (energy_uj)"
    )
    out = summarize(windows, idle, TOLERANCE, counter_name)
    out["meter"] = getattr(meter, "kind", "?")
    out["config"] = {
        "window_s": window_s,
        "windows": n_windows,
        "idle_s": idle_s,
        "power_hz": hz,
        "workload": "the session's timed loop at the cell's batch size, after the latency run",
    }
    if is_gpu:
        sm = [c[0] for c in clocks if c[0] is not None]
        mem = [c[1] for c in clocks if c[1] is not None]
        out["gpu"] = {
            **meter.info(),
            "before": before,
            "after": after,
            "temperature_before_c": (before or {}).get("temperature_c"),
            "temperature_after_c": (after or {}).get("temperature_c"),
            "sm_clock_mhz_end_of_windows": sm,
            "mem_clock_mhz_end_of_windows": mem,
        }
        if not meter.has_counter and out.get("available"):
            out["warnings"].append(
                "this GPU has no energy counter (before Volta): joules_per_image is integrated power, estimated"
            )
    else:
        out["cpu"] = meter.info()
    return out
