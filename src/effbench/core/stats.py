"""Summary statistics of latency samples.

The confidence interval of the median is the percentile interval of its *exact* bootstrap
distribution: the median of a resample of size n is <= the j-th order statistic x_(j) exactly when
at least m = ceil(n/2) resampled values are <= x_(j), and that count is Binomial(n, j/n). So the
bootstrap distribution is known in closed form and needs no random resampling.

The two ranks of the interval depend on n alone; they are found by binary search over j, each step
one binomial tail summed in log space over the terms that matter, and the two order statistics are
then selected with a partition (no full sort): about a millisecond for 10^5 samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np

_TAIL_SD = 40.0  # binomial terms beyond this many standard deviations from the mean are < 1e-300


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mean: float
    std: float
    min: float
    max: float
    p90: float
    p95: float
    p99: float
    cv: float
    ci95_low: float
    ci95_high: float

    @property
    def ci_half_width_rel(self) -> float:
        """Half-width of the median's 95% CI relative to the median."""
        if not self.median:
            return math.inf
        return (self.ci95_high - self.ci95_low) / 2 / self.median

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _binomial_sf(n: int, m: int, j: int, logfact: np.ndarray) -> float:
    """P(Binomial(n, j/n) >= m)."""
    if j >= n:
        return 1.0
    p = j / n
    sd = math.sqrt(n * p * (1 - p))
    lo = max(m, int(n * p - _TAIL_SD * sd))
    hi = min(n, int(n * p + _TAIL_SD * sd) + 1)
    if lo > hi:
        return 0.0 if lo > n * p else 1.0
    k = np.arange(lo, hi + 1)
    logs = logfact[n] - logfact[k] - logfact[n - k] + k * math.log(p) + (n - k) * math.log1p(-p)
    top = float(logs.max())
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def median_ci_ranks(n: int, confidence: float = 0.95) -> Tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bounding the median's exact bootstrap CI."""
    if n <= 1:
        return 0, 0
    m = int(math.ceil(n / 2))
    logfact = _log_factorials(n)
    alpha = (1 - confidence) / 2

    def first_at_least(level: float) -> int:  # smallest i with P(median* <= x_(i)) >= level
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _binomial_sf(n, m, mid + 1, logfact) >= level:
                hi = mid
            else:
                lo = mid + 1
        return lo

    return first_at_least(alpha), first_at_least(1 - alpha)


def median_ci(samples, confidence: float = 0.95) -> Tuple[float, float]:
    """Exact bootstrap percentile CI of the median (see the module docstring)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return math.nan, math.nan
    lo, hi = median_ci_ranks(n, confidence)
    part = np.partition(x, [lo, hi])
    return float(part[lo]), float(part[hi])


def rel_half_width(samples) -> float:
    """Half-width of the median's 95% CI relative to the median."""
    lo, hi = median_ci(samples)
    med = float(np.median(samples))
    return (hi - lo) / 2 / med if med > 0 else math.inf


def summarize(samples, confidence: float = 0.95) -> Summary:
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no samples to summarize")
    p90, p95, p99, med = np.percentile(x, [90, 95, 99, 50])
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    lo, hi = median_ci(x, confidence)
    return Summary(
        n=int(x.size),
        median=float(med),
        mean=mean,
        std=std,
        min=float(x.min()),
        max=float(x.max()),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
        cv=std / mean if mean else math.nan,
        ci95_low=lo,
        ci95_high=hi,
    )
