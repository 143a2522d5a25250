"""The result record: one cell's outcome, whole, with its environment and raw samples.

`Result.to_dict()` is the JSON record that `bench run --out` writes and the store keeps.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "failed", "crashed", "timeout", "skipped", "lost")  # lost: a farm node died with the cell


@dataclass
class Parity:
    max_abs_err: float
    max_rel_err: float  # max_abs_err divided by the reference outputs' largest magnitude
    cosine: float
    top1_agreement: float
    ok: bool
    tolerance: dict[str, float] = field(default_factory=dict)
    reference: str = "torch"


@dataclass
class Result:
    model: str
    backend: str
    device: str = "cpu"
    scenario: str = "latency"
    batch_size: int = 1
    precision: str = "fp32"  # requested
    status: str = "ok"
    error: str | None = None
    precision_ran: str | None = None  # what the runtime really executed in
    latency_ms: dict[str, float] | None = None  # median, mean, std, min, max, p90, p95, p99, ci95_low, ci95_high, cv, n
    throughput_per_s: float | None = None  # images per second
    iterations: int = 0
    first_inference_ms: float | None = None
    load_s: float | None = None
    export_s: float | None = None
    artifact_bytes: int | None = None
    artifact_cached: bool | None = None
    params: int | None = None
    macs: int | None = None
    ideal_ms: float | None = None
    roofline_ms: float | None = None
    efficiency: float | None = None
    parity: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None  # peak_rss_mb, load_delta_mb, artifact_bytes, gpu...
    energy: dict[str, Any] | None = None  # {"available": False, "reason": ...} or joules per image...
    stability: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    threads: int | None = None
    cpus: list[int] | None = None
    tag: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # backend-specific settings that ran
    env: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        known = {f for f in cls.__dataclass_fields__}
        extra = {k: v for k, v in data.items() if k not in known}
        obj = cls(**{k: v for k, v in data.items() if k in known})
        obj.extra.update(extra)
        return obj

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def failed_result(config: dict[str, Any], status: str, error: str, **kw) -> Result:
    """A record for a cell that did not produce numbers (failed, crashed, timeout, skipped)."""
    assert status in STATUSES
    return Result(
        model=config.get("model", "?"),
        backend=config.get("backend", "?"),
        device=config.get("device", "cpu"),
        scenario=config.get("scenario", "latency"),
        batch_size=config.get("batch_size", 1),
        precision=config.get("precision", "fp32"),
        status=status,
        error=error,
        tag=config.get("tag"),
        config=config,
        **kw,
    )
