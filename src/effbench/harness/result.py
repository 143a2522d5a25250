"""The result record: one cell's outcome, whole, with its environment and raw samples.

A Result is built once, by the assembly step (harness.assemble) or the failure classification
(harness.failures), from typed parts, and not changed afterwards (`with_changes` makes a copy).
`Result.to_dict()` is the JSON record that `bench run --out` writes and the store keeps.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping

from effbench.core.stats import Summary

RECORD_SCHEMA = 2
STATUSES = ("ok", "failed", "crashed", "timeout", "skipped", "lost")  # lost: a farm node died with the cell


def _known(cls: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _summary(data: Mapping[str, Any]) -> Summary:
    """A stored latency block; a figure a partial block (a generated or foreign record) lacks is NaN."""
    known = _known(Summary, data)
    return Summary(**{f.name: known.get(f.name, 0 if f.name == "n" else math.nan) for f in fields(Summary)})


@dataclass(frozen=True)
class Parity:
    max_abs_err: float = math.nan
    max_rel_err: float = math.nan  # max_abs_err divided by the reference outputs' largest magnitude
    cosine: float = math.nan
    top1_agreement: float = math.nan
    ok: bool = False
    tolerance: dict[str, float] = field(default_factory=dict)
    reference: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Memory:
    peak_rss_mb: float | None = None
    peak_covers: str | None = None
    peak_source: str | None = None
    load_delta_mb: float | None = None
    rss_before_load_mb: float | None = None
    artifact_bytes: int | None = None
    device: dict[str, Any] | None = None  # accelerator memory figures

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Energy:
    """Energy per image where a meter exists; otherwise available=False and the reason."""

    available: bool
    reason: str | None = None
    joules_per_image: float | None = None
    readings: dict[str, Any] = field(default_factory=dict)  # windows, idle, meter details (flattened in JSON)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.readings)
        out.update({"available": self.available, "joules_per_image": self.joules_per_image})
        if self.reason is not None or not self.available:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Energy | None:
        if data is None:
            return None
        rest = {k: v for k, v in data.items() if k not in ("available", "reason", "joules_per_image")}
        available = data.get("available", data.get("joules_per_image") is not None)
        return cls(bool(available), data.get("reason"), data.get("joules_per_image"), rest)


@dataclass(frozen=True)
class Timing:
    """Where a cell's time went, apart from the steady-state samples."""

    first_inference_ms: float | None = None
    load_s: float | None = None
    # cold: the artifact was made for this cell (export, compile, engine build) and then loaded;
    # cached: loaded from an artifact an earlier cell made. Exactly one of the two is set.
    load_cold_s: float | None = None
    load_cached_s: float | None = None
    export_s: float | None = None  # export (and engine build) time of the artifact, when it was built
    prepare_s: float | None = None  # export/analysis/reference lookup or build before measuring
    warmup_s: float | None = None
    warmup_iters: int | None = None
    measure_s: float | None = None  # the measuring window
    cell_wall_s: float | None = None  # the launcher's wall time for the cell (start to parts back)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
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
    latency: Summary | None = None
    throughput_per_s: float | None = None  # images per second
    iterations: int = 0
    timing: Timing = field(default_factory=Timing)
    artifact_bytes: int | None = None
    artifact_cached: bool | None = None
    params: int | None = None
    macs: int | None = None
    ideal_ms: float | None = None
    roofline_ms: float | None = None
    efficiency: float | None = None
    parity: Parity | None = None
    memory: Memory | None = None
    energy: Energy | None = None
    accuracy: dict[str, Any] | None = None  # top-1/top-5 on the timed engine (effbench.accuracy)
    quantization: dict[str, Any] | None = None  # how an int8 artifact was made
    profiled: bool = False  # a per-layer profile ran (extra["profile"]): its timing is not comparable
    stability: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    threads: int | None = None
    cpus: list[int] | None = None
    tag: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # backend-specific settings that ran
    env: dict[str, Any] = field(default_factory=dict)
    samples_ms: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def latency_ms(self) -> dict[str, float] | None:
        return self.latency.to_dict() if self.latency else None

    def with_changes(self, **changes: Any) -> Result:
        return dataclasses.replace(self, **changes)

    def with_extra(self, **extra: Any) -> Result:
        return dataclasses.replace(self, extra={**self.extra, **extra})

    def to_dict(self) -> dict[str, Any]:
        t = self.timing
        return {
            "schema": RECORD_SCHEMA,
            "id": self.id,
            "created_at": self.created_at,
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            "scenario": self.scenario,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "precision_ran": self.precision_ran,
            "status": self.status,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "throughput_per_s": self.throughput_per_s,
            "iterations": self.iterations,
            "first_inference_ms": t.first_inference_ms,
            "load_s": t.load_s,
            "load_cold_s": t.load_cold_s,
            "load_cached_s": t.load_cached_s,
            "export_s": t.export_s,
            "timing": t.to_dict(),
            "artifact_bytes": self.artifact_bytes,
            "artifact_cached": self.artifact_cached,
            "params": self.params,
            "macs": self.macs,
            "ideal_ms": self.ideal_ms,
            "roofline_ms": self.roofline_ms,
            "efficiency": self.efficiency,
            "parity": self.parity.to_dict() if self.parity else None,
            "memory": self.memory.to_dict() if self.memory else None,
            "energy": self.energy.to_dict() if self.energy else None,
            "accuracy": self.accuracy,
            "quantization": self.quantization,
            "profiled": self.profiled,
            "stability": self.stability,
            "warnings": list(self.warnings),
            "threads": self.threads,
            "cpus": self.cpus,
            "tag": self.tag,
            "config": self.config,
            "config_hash": self.config_hash,
            "runtime": self.runtime,
            "env": self.env,
            "samples_ms": list(self.samples_ms),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """A record back into a Result (records of schema 1 included)."""
        d = dict(data)
        lat = d.pop("latency_ms", None)
        timing = (
            Timing(**_known(Timing, d.get("timing") or {}))
            if d.get("timing")
            else Timing(
                first_inference_ms=d.get("first_inference_ms"),
                load_s=d.get("load_s"),
                export_s=d.get("export_s"),
                measure_s=(d.get("extra") or {}).get("measure_s"),
                cell_wall_s=(d.get("extra") or {}).get("cell_wall_s"),
            )
        )
        par, mem = d.get("parity"), d.get("memory")
        scenario = d.get("scenario", "latency")
        profiled = bool(d.get("profiled")) or scenario == "profile"  # schema 1 stored profiled cells so
        kw = _known(cls, d)
        kw.update(
            latency=_summary(lat) if lat else None,
            timing=timing,
            parity=Parity(**_known(Parity, par)) if par else None,
            memory=Memory(**_known(Memory, mem)) if mem else None,
            energy=Energy.from_dict(d.get("energy")),
            warnings=tuple(d.get("warnings") or ()),
            samples_ms=tuple(d.get("samples_ms") or ()),
            scenario="latency" if scenario == "profile" else scenario,
            profiled=profiled,
        )
        return cls(**kw)


def as_result(item: Result | Mapping[str, Any]) -> Result:
    """A Result, or a JSON record (a results file, a spool line, a caller's dict) read into one."""
    return item if isinstance(item, Result) else Result.from_dict(item)


def cell_of(result: Result) -> tuple[Any, ...]:
    """What makes two results the same cell: the configuration hash, else the cell's fields."""
    if result.config_hash:
        return (result.config_hash,)
    r = result
    return (r.model, r.backend, r.device, r.scenario, r.batch_size, r.precision, r.profiled)


def newest_per_cell(results: Iterable[Result]) -> list[Result]:
    """The newest result of each cell, in the order of the cells' newest results (newest first)."""
    newest: dict[tuple[Any, ...], Result] = {}
    for r in results:
        have = newest.get(cell_of(r))
        if have is None or r.created_at > have.created_at:
            newest[cell_of(r)] = r
    return sorted(newest.values(), key=lambda r: r.created_at, reverse=True)
