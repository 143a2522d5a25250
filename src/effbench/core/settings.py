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
    scenario: str = "latency"  # latency | throughput
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
    # the backend's typed options as the runtime needs them, e.g. {"hint": "THROUGHPUT", "streams": 4}
    runtime_options: Dict[str, Any] = field(default_factory=dict)

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
    f.name: f.default for f in fields(MeasureSettings) if f.name not in ("runtime", "input_shape", "runtime_options")
}
