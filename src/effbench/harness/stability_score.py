"""A stability score per device over its stored history (after ExecuTorch's
analyze_latency_stability.py): for each model x backend x batch x precision x scenario measured
there at least MIN_RUNS times, the spread of the run medians over time (CV, max/min) and the runs'
own tails (p99/p50) become penalties taken from 100, rated Excellent / Good / Moderate / Poor.

A device whose numbers move by 20% from one day to the next scores Poor before anyone compares
two models on it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from effbench.harness.result import Result, as_result

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


@dataclass(frozen=True)
class Run:
    """One ok, unprofiled run of a cell: what the score reads from a result."""

    model: str
    backend: str
    batch: int | None
    precision: str
    scenario: str
    created_at: str
    median: float
    p99: float


def runs_of(records: Iterable[Result | Mapping[str, Any]]) -> list[Run]:
    """The results' ok, unprofiled runs with a median and a p99."""
    out = []
    for r in map(as_result, records):
        lat = r.latency
        if r.ok and not r.profiled and lat is not None and lat.median and lat.p99:
            cell = (r.model, r.backend, r.batch_size, r.precision, r.scenario)
            out.append(Run(*cell, r.created_at, lat.median, lat.p99))
    return out


def device_stability(records: Iterable[Result | Mapping[str, Any]], min_runs: int = MIN_RUNS) -> dict[str, Any]:
    """`runs_stability` of the results' runs."""
    return runs_stability(runs_of(records), min_runs)


def runs_stability(runs: Iterable[Run], min_runs: int = MIN_RUNS) -> dict[str, Any]:
    """{"cells": [CellStability ...] (worst first), "score", "rating", "runs", "too_few": cells with fewer runs}."""
    groups: dict[tuple[str, str, int | None, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.backend, run.batch, run.precision, run.scenario)].append(run)
    cells, too_few = [], 0
    for (model, backend, batch, precision, scenario), cell in groups.items():
        if len(cell) < min_runs:
            too_few += 1
            continue
        cell.sort(key=lambda r: r.created_at)
        medians = [r.median for r in cell]
        tails = [r.p99 / r.median for r in cell]
        s, cv, spread, tail = score(medians, tails)
        cells.append(
            CellStability(
                model, backend, batch, precision, scenario, len(cell), cell[0].created_at,
                cell[-1].created_at, float(np.median(medians)), cv, spread, tail, s, rating(s),
            )
        )  # fmt: skip
    cells.sort(key=lambda c: c.score)
    out: dict[str, Any] = {"cells": cells, "too_few": too_few, "runs": sum(c.runs for c in cells)}
    if cells:
        overall = round(sum(c.score * c.runs for c in cells) / out["runs"], 1)
        out.update(score=overall, rating=rating(overall))
    return out
