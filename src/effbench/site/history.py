"""Stored records -> one history per cell (keyed by the configuration hash), oldest run first.

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


def _versions(rec: dict[str, Any]) -> dict[str, str]:
    env = mapping(rec.get("env"))
    versions = mapping(env.get("versions"))
    runtime = mapping(rec.get("runtime"))
    out = {str(k): text(v) for k, v in versions.items() if v}
    if runtime.get("version"):
        out["runtime"] = text(runtime.get("version"))
    return out


def _commit(rec: dict[str, Any]) -> str:
    env = mapping(rec.get("env"))
    return text(env.get("git_commit"))


def to_point(rec: dict[str, Any]) -> Point:
    lat = mapping(rec.get("latency_ms"))
    n = num(lat.get("n"))
    return Point(
        id=text(rec.get("id")),
        created_at=text(rec.get("created_at")),
        status=text(rec.get("status")) or "?",
        median=num(lat.get("median")),
        ci_low=num(lat.get("ci95_low")),
        ci_high=num(lat.get("ci95_high")),
        n=int(n) if n is not None else None,
        commit=_commit(rec),
        tag=text(rec.get("tag")),
        versions=_versions(rec),
        p99=num(lat.get("p99")),
        error=text(rec.get("error")),
        raw_samples=rec["samples_ms"] if isinstance(rec.get("samples_ms"), list) else [],
    )


def cell_key(rec: dict[str, Any]) -> str:
    if rec.get("config_hash"):
        return text(rec["config_hash"])
    blob = json.dumps([rec.get(k) for k in CELL_KEYS], default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _settings(rec: dict[str, Any]) -> dict[str, Any]:
    config = mapping(rec.get("config"))
    out = {k: v for k, v in config.items() if k not in _NOT_SETTINGS and v not in (None, {}, [])}
    if rec.get("precision_ran"):
        out["precision_ran"] = rec["precision_ran"]
    return out


def histories(records: list[dict[str, Any]]) -> list[CellHistory]:
    """One history per cell, in a stable order; profile records (per-layer timing runs) are left out."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if isinstance(rec, dict) and not rec.get("profiled"):
            by_key.setdefault(cell_key(rec), []).append(rec)
    out: list[CellHistory] = []
    for key, recs in by_key.items():
        recs.sort(key=lambda r: text(r.get("created_at")))
        newest = recs[-1]
        config = mapping(newest.get("config"))
        batch = newest.get("batch_size")
        resolution = num(config.get("input_size"))
        out.append(
            CellHistory(
                key=key,
                model=text(newest.get("model")) or "?",
                backend=text(newest.get("backend")) or "?",
                device=text(newest.get("device")) or "?",
                scenario=text(newest.get("scenario")) or "latency",
                batch=int(batch) if isinstance(batch, (int, float)) else None,
                precision=text(newest.get("precision")) or "fp32",
                resolution=int(resolution) if resolution is not None else None,
                settings=_settings(newest),
                points=[to_point(r) for r in recs],
            )
        )
    out.sort(key=lambda c: (c.model, c.device, c.backend, c.scenario, c.batch or 0, c.precision, c.key))
    return out
