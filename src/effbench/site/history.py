"""Stored results -> one history per cell (keyed by the configuration hash), oldest run first.

A cell's history is every run of one configuration over time. Each point keeps what the site shows
and where it comes from: the run's id, date, git commit and tag, its median with the 95% CI, and the
runtime versions it ran with (a comparison names them when they differ).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from effbench.harness.result import Result
from effbench.reports.data import CELL_KEYS, mapping, num, text

# Configuration fields that say how a run was done, not what was measured: left out of "settings".
_NOT_SETTINGS = {"tag", "db", "devices_file", "timeout_s", "model", "backend", "device", "scenario", "precision"}
_MAX_SAMPLES = 400  # raw samples a point keeps for the change test (a window of runs pools them)


@dataclass
class Point:
    """One run of a cell."""

    id: str
    created_at: str
    status: str
    median: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    commit: str
    tag: str
    versions: dict[str, str]
    p99: float | None = None
    error: str = ""
    raw_samples: list[Any] = field(default_factory=list, repr=False)  # as stored; read only by a change test

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median is not None

    @property
    def samples(self) -> list[float]:
        return [v for v in (num(x) for x in self.raw_samples[:_MAX_SAMPLES]) if v is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "t": self.created_at,
            "status": self.status,
            "median": self.median,
            "ci": [self.ci_low, self.ci_high] if self.ci_low is not None and self.ci_high is not None else None,
            "n": self.n,
            "commit": self.commit,
            "tag": self.tag,
            "versions": self.versions,
            **({"error": self.error[:300]} if self.error else {}),
        }


@dataclass
class CellHistory:
    key: str  # the configuration hash (a hash of the cell's fields for records without one)
    model: str
    backend: str
    device: str
    scenario: str
    batch: int | None
    precision: str
    resolution: int | None
    settings: dict[str, Any]
    points: list[Point]  # oldest first

    @cached_property
    def ok_points(self) -> list[Point]:
        return [p for p in self.points if p.ok]

    @cached_property
    def points_json(self) -> list[dict[str, Any]]:
        """The points as written to the cell's data file (and embedded in its page)."""
        return [p.to_json() for p in self.points]

    @property
    def latest(self) -> Point | None:
        ok = self.ok_points
        return ok[-1] if ok else (self.points[-1] if self.points else None)

    @property
    def precision_ran(self) -> str:
        return self.settings.get("precision_ran") or self.precision

    def summary(self) -> dict[str, Any]:
        """What a comparison of two cells reads: every field that can differ between them."""
        latest = self.latest
        return {
            **self.describe(),
            "settings": self.settings,
            "versions": latest.versions if latest else {},
            "median": latest.median if latest else None,
            "ci": [latest.ci_low, latest.ci_high] if latest and latest.ci_low is not None else None,
        }

    def describe(self) -> dict[str, Any]:
        """The fields the index and every filter use."""
        return {
            "key": self.key,
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            "scenario": self.scenario,
            "batch": self.batch,
            "precision": self.precision,
            "resolution": self.resolution,
        }


def _versions(r: Result) -> dict[str, str]:
    versions = mapping(r.env.get("versions"))
    out = {str(k): text(v) for k, v in versions.items() if v}
    if r.runtime.get("version"):
        out["runtime"] = text(r.runtime.get("version"))
    return out


def to_point(r: Result) -> Point:
    lat = r.latency
    return Point(
        id=r.id,
        created_at=r.created_at,
        status=r.status,
        median=num(lat.median) if lat else None,
        ci_low=num(lat.ci95_low) if lat else None,
        ci_high=num(lat.ci95_high) if lat else None,
        n=lat.n if lat else None,
        commit=text(r.env.get("git_commit")),
        tag=text(r.tag),
        versions=_versions(r),
        p99=num(lat.p99) if lat else None,
        error=text(r.error),
        raw_samples=list(r.samples_ms),
    )


def cell_key(r: Result) -> str:
    if r.config_hash:
        return r.config_hash
    blob = json.dumps([getattr(r, k) for k in CELL_KEYS], default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _settings(r: Result) -> dict[str, Any]:
    out = {k: v for k, v in r.config.items() if k not in _NOT_SETTINGS and v not in (None, {}, [])}
    if r.precision_ran:
        out["precision_ran"] = r.precision_ran
    return out


def histories(results: list[Result]) -> list[CellHistory]:
    """One history per cell, in a stable order; profiled results (per-layer timing runs) are left out."""
    by_key: dict[str, list[Result]] = {}
    for r in results:
        if not r.profiled:
            by_key.setdefault(cell_key(r), []).append(r)
    out: list[CellHistory] = []
    for key, runs in by_key.items():
        runs.sort(key=lambda r: r.created_at)
        newest = runs[-1]
        resolution = num(newest.config.get("input_size"))
        out.append(
            CellHistory(
                key=key,
                model=newest.model or "?",
                backend=newest.backend or "?",
                device=newest.device or "?",
                scenario=newest.scenario or "latency",
                batch=newest.batch_size,
                precision=newest.precision or "fp32",
                resolution=int(resolution) if resolution is not None else None,
                settings=_settings(newest),
                points=[to_point(r) for r in runs],
            )
        )
    out.sort(key=lambda c: (c.model, c.device, c.backend, c.scenario, c.batch or 0, c.precision, c.key))
    return out
