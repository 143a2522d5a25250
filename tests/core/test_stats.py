import numpy as np
import pytest

from effbench.core.stats import median_ci, median_ci_ranks, summarize


def test_summary_fields_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.lognormal(1.0, 0.2, 1001)
    s = summarize(x)
    assert s.n == 1001
    assert s.median == pytest.approx(np.median(x))
    assert s.mean == pytest.approx(x.mean())
    assert s.std == pytest.approx(x.std(ddof=1))
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.min == x.min() and s.max == x.max()
    assert s.cv == pytest.approx(x.std(ddof=1) / x.mean())
    assert s.ci95_low <= s.median <= s.ci95_high


@pytest.mark.parametrize("n", [21, 200, 2000])
def test_exact_bootstrap_ci_agrees_with_resampling(n):
    rng = np.random.default_rng(n)
    x = rng.gamma(4.0, 1.0, n)
    lo, hi = median_ci(x)
    boots = np.median(x[rng.integers(0, n, (4000, n))], axis=1)
    blo, bhi = np.percentile(boots, [2.5, 97.5])
    # both are order statistics of x; allow a few ranks of Monte Carlo error
    xs = np.sort(x)
    rank = lambda v: np.searchsorted(xs, v)
    assert abs(rank(lo) - rank(blo)) <= max(2, n // 100)
    assert abs(rank(hi) - rank(bhi)) <= max(2, n // 100)


def test_ci_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small = median_ci(rng.normal(10, 1, 50))
    large = median_ci(rng.normal(10, 1, 5000))
    assert (large[1] - large[0]) < (small[1] - small[0]) / 5


def test_empty_samples_rejected():
    with pytest.raises(ValueError):
        summarize([])


def _scipy_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """The same exact-bootstrap ranks from scipy's binomial tail, evaluated for every j (the slow way)."""
    import math

    from scipy.stats import binom

    m = math.ceil(n / 2)
    cdf = binom.sf(m - 1, n, np.arange(1, n + 1) / n)
    alpha = (1 - confidence) / 2
    lo = int(np.searchsorted(cdf, alpha, side="left"))
    hi = int(np.searchsorted(cdf, 1 - alpha, side="left"))
    return min(lo, n - 1), min(hi, n - 1)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 11, 31, 99, 100, 101, 1000, 1001, 4097, 20_000, 100_000])
def test_ranks_equal_scipys_exact_binomial_computation(n):
    assert median_ci_ranks(n) == _scipy_ranks(n)


def test_interval_is_two_order_statistics_of_the_samples():
    x = np.random.default_rng(3).lognormal(0, 0.4, 100_000)
    lo, hi = median_ci(x)
    xs = np.sort(x)
    i, j = median_ci_ranks(x.size)
    assert (lo, hi) == (xs[i], xs[j]) and lo < np.median(x) < hi
