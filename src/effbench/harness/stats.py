"""Summary statistics of latency samples.

The confidence interval of the median is the percentile interval of its *exact* bootstrap
distribution: the median of a resample of size n is <= the j-th order statistic x_(j) exactly when
at least m = ceil(n/2) resampled values are <= x_(j), and that count is Binomial(n, j/n). So the
bootstrap distribution is known in closed form and needs no random resampling: deterministic, and
cheap for a hundred thousand samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)


def median_ci(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Exact bootstrap percentile CI of the median (see module docstring)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(x[0]), float(x[0])
    m = math.ceil(n / 2)
    j = np.arange(1, n + 1)
    # P(resample median <= x_(j)) = P(Binomial(n, j/n) >= m)
    cdf = binom.sf(m - 1, n, j / n)
    alpha = (1 - confidence) / 2
    lo = int(np.searchsorted(cdf, alpha, side="left"))
    hi = int(np.searchsorted(cdf, 1 - alpha, side="left"))
    return float(x[min(lo, n - 1)]), float(x[min(hi, n - 1)])


def summarize(samples, confidence: float = 0.95) -> Summary:
    x = np.asarray(samples, dtype=np.float64)
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
