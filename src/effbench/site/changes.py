"""Change points in a cell's history: found by optimal partitioning, confirmed by the gate's own test.

Finding: the run medians, in log space, are split into segments of constant level by optimal
partitioning (the exact dynamic programme behind PELT; asv's step detection solves the same problem
with an L1 cost): minimise the squared deviations from each segment's mean, divided by the noise
variance, plus a penalty of `PENALTY * log(n)` per change. The noise is estimated robustly from
consecutive differences (1.4826 * MAD / sqrt(2)), so day-to-day jitter sets the bar a step must clear.
A segment has at least MIN_RUNS runs: one odd day is not a new level.

Confirming (what makes a change "real", coloured on the pages and eligible for the feed): the raw
samples of up to WINDOW runs on each side are compared exactly as `bench gate` compares a baseline
with a candidate (block medians, Mann-Whitney U, block-bootstrap CI of the ratio of medians;
`gate.verdict.decide`). Runs stored without samples fall back to their medians' 95% CIs: real when the
two sides' intervals do not overlap and the ratio clears the threshold. Either way every run on the new
level must lie beyond every run of the old one within the window, so one odd run never makes a change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from effbench.gate.stats import compare_samples, min_samples
from effbench.gate.verdict import IMPROVEMENT, REGRESSION, decide
from effbench.site.history import CellHistory, Point

PENALTY = 5.0  # per change, times log(n): 3% of flat 24-run series give a candidate, 95% of 10% steps are found exactly
MIN_RUNS = 2
WINDOW = 3  # runs each side of a change whose samples are compared
ALPHA = 0.01
MIN_BLOCK = 5  # the gate's smallest block; blocks grow so each side has the gate's minimum of 10 (cost is per block)
N_BOOT = 1000  # bootstrap resamples (the gate's 2000 halved: a site confirms hundreds of changes at once)
DEFAULT_THRESHOLD = 0.05


def segment(values: np.ndarray, penalty: float = PENALTY, min_size: int = MIN_RUNS) -> list[int]:
    """Start indices of the segments after the first (the change points) of an optimal partition."""
    n = values.size
    if n < 2 * min_size:
        return []
    diffs = np.diff(values)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
    scale = max(float(np.median(np.abs(values))), 1e-12)
    sigma = max(sigma, 1e-3 * scale, 1e-9)  # flat series: a change must still be a change of a permille
    x = values / sigma
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    beta = penalty * math.log(n)
    best = np.full(n + 1, np.inf)
    best[0] = -beta
    last = np.zeros(n + 1, dtype=np.int64)
    for t in range(min_size, n + 1):
        s = np.arange(0, t - min_size + 1)
        s = s[np.isfinite(best[s])]
        if s.size == 0:
            continue
        length = t - s
        cost = (s2[t] - s2[s]) - (s1[t] - s1[s]) ** 2 / length
        total = best[s] + cost + beta
        i = int(np.argmin(total))
        best[t], last[t] = total[i], s[i]
    cuts: list[int] = []
    t = n
    while t > 0:
        t = int(last[t])
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


@dataclass
class Change:
    index: int  # the first run on the new level (into the cell's ok points)
    before: Point  # the last run on the old level
    after: Point  # the first run on the new level
    ratio: float  # new level / old level (latency: above 1 is slower)
    ci_low: float
    ci_high: float
    method: str
    verdict: str  # regression | improvement | no change (gate's words)
    why: str

    @property
    def real(self) -> bool:
        return self.verdict in (REGRESSION, IMPROVEMENT)

    def to_json(self) -> dict[str, Any]:
        side = lambda p: {"id": p.id, "t": p.created_at, "commit": p.commit, "tag": p.tag, "median": p.median}
        return {
            "index": self.index,
            "ratio": self.ratio,
            "ci": [self.ci_low, self.ci_high],
            "verdict": self.verdict,
            "real": self.real,
            "method": self.method,
            "why": self.why,
            "before": side(self.before),
            "after": side(self.after),
        }


def _pooled(points: list[Point]) -> list[float]:
    return [v for p in points for v in p.samples]


def _confirm(old: list[Point], new: list[Point], threshold: float) -> tuple[float, float, float, str, str, str]:
    """(ratio, ci_low, ci_high, method, verdict, why) for the runs just before and just after a change."""
    a, b = _pooled(old), _pooled(new)
    if min(len(a), len(b)) >= min_samples(MIN_BLOCK):
        block = max(MIN_BLOCK, min(len(a), len(b)) // min_samples(1))
        cmp = compare_samples(a, b, min_block_size=block, n_boot=N_BOOT)
        verdict, why = decide(cmp.ratio, cmp.ci_low, cmp.ci_high, cmp.p_value, alpha=ALPHA, threshold=threshold)
        return cmp.ratio, cmp.ci_low, cmp.ci_high, "gate: block medians, Mann-Whitney U, block bootstrap", verdict, why
    med = lambda ps, f: float(np.median([f(p) for p in ps]))
    m_old, m_new = med(old, lambda p: p.median), med(new, lambda p: p.median)
    with_ci = [p for p in old + new if p.ci_low is not None and p.ci_high is not None]
    ratio = m_new / m_old if m_old else math.inf
    if len(with_ci) < len(old) + len(new):
        return ratio, ratio, ratio, "medians only (no CI stored)", "no change", "runs without samples or CIs"
    lo_old, hi_old = med(old, lambda p: p.ci_low), med(old, lambda p: p.ci_high)
    lo_new, hi_new = med(new, lambda p: p.ci_low), med(new, lambda p: p.ci_high)
    ci_low, ci_high = lo_new / hi_old, hi_new / lo_old
    apart = hi_old < lo_new or hi_new < lo_old
    if apart and ratio > 1 + threshold:
        verdict = REGRESSION
    elif apart and ratio < 1 / (1 + threshold):
        verdict = IMPROVEMENT
    else:
        verdict = "no change"
    why = f"runs' 95% CIs {'apart' if apart else 'overlap'}; ratio {ratio:.3f} against the {threshold:.1%} threshold"
    return ratio, ci_low, ci_high, "95% CIs of the runs' medians (no raw samples stored)", verdict, why


def _separated(old: list[Point], new: list[Point], up: bool) -> bool:
    """Every run on the new level lies beyond every run of the old one (in the direction of the step)."""
    before = [p.median for p in old if p.median is not None]
    after = [p.median for p in new if p.median is not None]
    return min(after) > max(before) if up else max(after) < min(before)


def find_changes(cell: CellHistory, threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    ok = cell.ok_points
    values = np.log(np.array([p.median for p in ok if p.median is not None], dtype=np.float64).clip(min=1e-12))
    cuts = segment(values)
    bounds = [0, *cuts, len(ok)]
    changes: list[Change] = []
    for i, cut in enumerate(cuts):
        old = ok[max(bounds[i], cut - WINDOW) : cut]
        new = ok[cut : min(bounds[i + 2], cut + WINDOW)]
        ratio, lo, hi, method, verdict, why = _confirm(old, new, threshold)
        if verdict in (REGRESSION, IMPROVEMENT) and not _separated(old, new, ratio > 1):
            verdict, why = "no change", f"{why}; but the runs either side overlap (one odd run is not a new level)"
        changes.append(Change(cut, ok[cut - 1], ok[cut], ratio, lo, hi, method, verdict, why))
    return changes
