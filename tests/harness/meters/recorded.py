"""A meter that replays recorded readings against a virtual clock.

This is a recorded input, not a mock of the code under test: each trace is a list of
(seconds, value) readings as a real counter would have produced them, and a read returns the
latest reading at or before the virtual time, exactly as polling a real counter that updates at
discrete instants. The energy-window logic in effbench.harness.meters.energy runs unmodified
over it. Virtual time advances only when the workload runs (`advance`) or the logic sleeps.
"""

from __future__ import annotations

import bisect


class RecordedMeter:
    kind = "recorded"

    def __init__(self, energy=None, power=None, reasons=None, start=0.0):
        self.now = float(start)
        self._energy = sorted(energy) if energy is not None else None
        self._power = sorted(power) if power is not None else None
        self._reasons = sorted(reasons or [])
        self.has_counter = energy is not None
        self.has_power = power is not None

    @staticmethod
    def _at(trace, t):
        times = [p[0] for p in trace]
        i = bisect.bisect_right(times, t) - 1
        return trace[max(i, 0)][1]

    def read_energy_mj(self):
        return None if self._energy is None else float(self._at(self._energy, self.now))

    def read_power_mw(self):
        return None if self._power is None else float(self._at(self._power, self.now))

    def read_reasons(self):
        return int(self._at(self._reasons, self.now)) if self._reasons else 0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def advance(self, seconds):
        self.now += seconds

    def info(self):
        return {"recorded": True}

    def close(self):
        pass


def constant_power_traces(watts, until_s, energy_dt=0.01, power_dt=0.05, power_scale=1.0, start_mj=5_000_000.0):
    """Recorded readings of a device drawing `watts` steadily: the cumulative energy counter (mJ)
    every `energy_dt` s and the power reading (mW, times `power_scale`) every `power_dt` s."""
    n_e = int(round(until_s / energy_dt)) + 1
    energy = [(k * energy_dt, start_mj + watts * k * energy_dt * 1000.0) for k in range(n_e)]
    n_p = int(round(until_s / power_dt)) + 1
    power = [(k * power_dt, watts * 1000.0 * power_scale) for k in range(n_p)]
    return energy, power


def piecewise_traces(segments, energy_dt=0.01, power_dt=0.05, start_mj=1_000_000.0):
    """Recorded readings for consecutive (seconds, watts) segments, e.g. idle then load."""
    energy, power = [], []
    t, e = 0.0, start_mj
    for seconds, watts in segments:
        steps = int(round(seconds / energy_dt))
        for k in range(steps):
            energy.append((t + k * energy_dt, e + watts * k * energy_dt * 1000.0))
        psteps = int(round(seconds / power_dt))
        for k in range(psteps):
            power.append((t + k * power_dt, watts * 1000.0))
        t += seconds
        e += watts * seconds * 1000.0
    energy.append((t, e))
    power.append((t, segments[-1][1] * 1000.0))
    return energy, power
