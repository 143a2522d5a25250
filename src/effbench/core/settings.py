"""What one measurement is asked to do: the settings every launcher hands to the core unchanged.

The defaults here are the project's only defaults: the harness's RunConfig and the command line
take theirs from `DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Union


@dataclass
class MeasureSettings:
    runtime: str  # the backend (or core runtime) that opens the artifact
    input_shape: List[int]  # N, C, H, W
    device: str = "cpu"
    precision: str = "fp32"
    scenario: str = "latency"  # a name in effbench.core.scenarios.SCENARIOS
    threads: Optional[int] = None
    cpus: Optional[Union[List[int], str]] = None  # CPU indices, or big / little: a cluster, resolved on the device
    warmup_s: float = 1.0
    warmup_iters: int = 10
    duration_s: float = 3.0
    min_iters: int = 30
    max_iters: int = 200_000  # bounds the stored raw samples of sub-microsecond "models"
    target_ci: Optional[float] = None  # relative half-width of the median's 95% CI
    max_duration_s: float = 60.0
    requests: Optional[int] = None  # in-flight requests in the throughput scenario
    profile_iters: Optional[int] = None  # per-layer profile after the measurement
    window_s: Optional[float] = None  # the sustained scenario's window (None: a tenth of duration_s, at most 60 s)
    telemetry: bool = True  # read the device's probes before and after the cell (and per window)
    max_start_temp: Optional[float] = None  # thermal gate: wait until the hottest zone is below this, in C
    cooldown_timeout_s: float = 600.0  # ... for at most this long, then go on with a warning
    cooldown_s: float = 0.0  # sleep this long before the cell starts (the pause between cells)
    # MLPerf LoadGen scenarios (core/scenarios/loadgen.py)
    target_qps: Optional[float] = None  # server: queries/s offered (None: half a short latency run's rate)
    latency_bound_ms: Optional[float] = None  # server: the p99 bound LoadGen checks (None: LoadGen's 100 ms)
    samples_per_query: int = 8  # multistream: frames per query
    loadgen_dir: Optional[str] = None  # where LoadGen writes its logs (kept beside the result)
    # the backend's typed options as the runtime needs them, e.g. {"hint": "THROUGHPUT", "streams": 4}
    runtime_options: Dict[str, Any] = field(default_factory=dict)
    # the harness's meters (energy windows) as typed values: energy, energy_windows, idle_s, power_hz,
    # energy_window_s; the ssh agent ignores them
    meters: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> MeasureSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError("unknown measurement setting(s): %s" % ", ".join(unknown))
        return cls(**data)


DEFAULTS: Dict[str, Any] = {
    f.name: f.default
    for f in fields(MeasureSettings)
    if f.name not in ("runtime", "input_shape", "runtime_options", "meters", "loadgen_dir")
}
