"""A stability score per device over its stored history (after ExecuTorch's
analyze_latency_stability.py): for each model x backend x batch x precision x scenario measured
there at least MIN_RUNS times, the spread of the run medians over time (CV, max/min) and the runs'
own tails (p99/p50) become penalties taken from 100, rated Excellent / Good / Moderate / Poor.

A device whose numbers move by 20% from one day to the next scores Poor before anyone compares
two models on it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_RUNS = 3
# (penalty weight, value at which that penalty is complete): CV of run medians 10%, max/min 1.3,
# median p99/p50 2.0 take 40, 30 and 30 points
CV_FULL, RANGE_FULL, TAIL_FULL = 0.10, 0.30, 1.0
CV_POINTS, RANGE_POINTS, TAIL_POINTS = 40.0, 30.0, 30.0
RATINGS = ((90.0, "Excellent"), (75.0, "Good"), (50.0, "Moderate"), (0.0, "Poor"))


def rating(score: float) -> str:
    return next(name for floor, name in RATINGS if score >= floor)


@dataclass(frozen=True)
class CellStability:
    model: str
    backend: str
    batch: int | None
    precision: str
    scenario: str
    runs: int
    first: str
    last: str
    median_ms: float  # the median of the run medians
    cv: float  # of the run medians
    max_min: float  # largest run median / smallest
    p99_p50: float  # median over runs of each run's p99 / median
    score: float
    rating: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(medians: list[float], p99_p50: list[float]) -> tuple[float, float, float, float]:
    """(score, cv, max/min, typical p99/p50) of a history of run medians and tail ratios."""
    m = np.asarray(medians, dtype=np.float64)
    cv = float(m.std(ddof=1) / m.mean()) if m.size > 1 and m.mean() > 0 else 0.0
    spread = float(m.max() / m.min()) if m.min() > 0 else float("inf")
    tail = float(np.median(p99_p50)) if p99_p50 else 1.0
    penalty = (
        CV_POINTS * min(1.0, cv / CV_FULL)
        + RANGE_POINTS * min(1.0, (spread - 1) / RANGE_FULL)
        + TAIL_POINTS * min(1.0, max(0.0, tail - 1) / TAIL_FULL)
    )
    return round(100.0 - penalty, 1), cv, spread, tail


def _usable(rec: dict[str, Any]) -> bool:
    lat = rec.get("latency_ms") or {}
    return rec.get("status") == "ok" and not rec.get("profiled") and bool(lat.get("median")) and bool(lat.get("p99"))


def device_stability(records: list[dict[str, Any]], min_runs: int = MIN_RUNS) -> dict[str, Any]:
    """{"cells": [CellStability ...] (worst first), "score", "rating", "runs", "too_few": cells with fewer runs}."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        if _usable(rec):
            key = (rec["model"], rec["backend"], rec.get("batch_size"), rec.get("precision"), rec.get("scenario"))
            groups[key].append(rec)
    cells, too_few = [], 0
    for (model, backend, batch, precision, scenario), recs in groups.items():
        if len(recs) < min_runs:
            too_few += 1
            continue
        recs.sort(key=lambda r: r.get("created_at") or "")
        medians = [r["latency_ms"]["median"] for r in recs]
        tails = [r["latency_ms"]["p99"] / r["latency_ms"]["median"] for r in recs]
        s, cv, spread, tail = score(medians, tails)
        cells.append(
            CellStability(
                model, backend, batch, precision, scenario, len(recs), recs[0].get("created_at") or "",
                recs[-1].get("created_at") or "", float(np.median(medians)), cv, spread, tail, s, rating(s),
            )
        )  # fmt: skip
    cells.sort(key=lambda c: c.score)
    out: dict[str, Any] = {"cells": cells, "too_few": too_few, "runs": sum(c.runs for c in cells)}
    if cells:
        overall = round(sum(c.score * c.runs for c in cells) / out["runs"], 1)
        out.update(score=overall, rating=rating(overall))
    return out
