"""Two-sample comparison of benchmark samples: block medians, Mann-Whitney U, block bootstrap.

Consecutive latency samples are autocorrelated (frequency scaling, cache state, a noisy neighbour
all last longer than one iteration), so treating thousands of them as independent makes any
tiny drift "significant". We split each side's samples, in measurement order, into 10-30 blocks of
near-equal size and test the per-block medians instead: blocks far apart in time are much closer
to independent, and a median shrugs off the odd preempted iteration inside a block.

The ratio of medians current/baseline gets a percentile bootstrap CI that resamples whole blocks
(keeping the within-block correlation) and recomputes the median of all samples in the chosen
blocks, so the CI belongs to the same statistic as the reported ratio. The RNG is seeded: the same
samples always give the same CI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.stats import mannwhitneyu

MIN_BLOCKS = 10
MAX_BLOCKS = 30
N_BOOT = 2000
SEED = 20240611


def min_samples(min_block_size: int) -> int:
    """Samples a side needs for a test: MIN_BLOCKS blocks of at least `min_block_size`."""
    return MIN_BLOCKS * min_block_size


def split_blocks(samples: Sequence[float] | np.ndarray, min_block_size: int) -> list[np.ndarray]:
    """Consecutive blocks (sizes differ by at most one, nothing dropped), 10-30 of them."""
    x = np.asarray(samples, dtype=np.float64)
    k = min(MAX_BLOCKS, x.size // min_block_size)
    if k < MIN_BLOCKS:
        raise ValueError(f"{x.size} samples is fewer than {min_samples(min_block_size)}")
    return np.array_split(x, k)


def robust_cv(samples: Sequence[float] | np.ndarray) -> float:
    """MAD-based coefficient of variation (1.4826 * MAD / median).

    Equals std/mean for normal noise, but one 50 ms preemption among thousands of 0.2 ms samples
    does not make a run look noisy: it does not move the median we compare either.
    """
    x = np.asarray(samples, dtype=np.float64)
    med = float(np.median(x))
    if med <= 0:
        return math.inf
    return 1.4826 * float(np.median(np.abs(x - med))) / med


@dataclass
class SampleComparison:
    n_baseline: int
    n_current: int
    blocks_baseline: int
    blocks_current: int
    median_baseline: float
    median_current: float
    ratio: float  # median current / median baseline
    ci_low: float
    ci_high: float
    p_value: float  # two-sided Mann-Whitney U on block medians
    cv_baseline: float
    cv_current: float


def _bootstrap_medians(blocks: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `n_boot` block-bootstrap resamples (blocks drawn with replacement).

    A resample is a multiset of blocks, so how many of its values are <= v is
    sum over blocks of (times drawn) * (block values <= v). A binary search over the pooled sorted
    values then finds each resample's median in O(log n) steps without materialising it.
    """
    k = len(blocks)
    sorted_blocks = [np.sort(b) for b in blocks]
    pooled = np.sort(np.concatenate(blocks))

    drawn = rng.integers(0, k, size=(n_boot, k))
    counts = np.zeros((n_boot, k), dtype=np.int64)
    np.add.at(counts, (np.arange(n_boot)[:, None], drawn), 1)
    total = counts @ np.array([b.size for b in blocks])

    def rank_value(rank: np.ndarray) -> np.ndarray:
        """The rank-th smallest value (1-based) of each resample."""
        lo = np.zeros(n_boot, dtype=np.int64)
        hi = np.full(n_boot, pooled.size - 1, dtype=np.int64)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            at_most = sum(counts[:, b] * np.searchsorted(sorted_blocks[b], pooled[mid], side="right") for b in range(k))
            enough = at_most >= rank
            hi = np.where(enough, mid, hi)
            lo = np.where(enough, lo, mid + 1)
        return pooled[lo]

    # the median of T values is the mean of the ceil(T/2)-th and (floor(T/2)+1)-th smallest
    return (rank_value((total + 1) // 2) + rank_value(total // 2 + 1)) / 2


def compare_samples(
    baseline: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    *,
    min_block_size: int = 5,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = 0.95,
) -> SampleComparison:
    """Ratio of medians current/baseline with its block-bootstrap CI and the block-median MWU p."""
    base = np.asarray(baseline, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    base_blocks = split_blocks(base, min_block_size)
    cur_blocks = split_blocks(cur, min_block_size)

    p = mannwhitneyu(
        [np.median(b) for b in cur_blocks],
        [np.median(b) for b in base_blocks],
        alternative="two-sided",
    ).pvalue

    rng = np.random.default_rng(seed)
    boot = _bootstrap_medians(cur_blocks, n_boot, rng) / _bootstrap_medians(base_blocks, n_boot, rng)
    tail = (1 - confidence) / 2 * 100
    ci_low, ci_high = np.percentile(boot, [tail, 100 - tail])

    med_base, med_cur = float(np.median(base)), float(np.median(cur))
    return SampleComparison(
        n_baseline=int(base.size),
        n_current=int(cur.size),
        blocks_baseline=len(base_blocks),
        blocks_current=len(cur_blocks),
        median_baseline=med_base,
        median_current=med_cur,
        ratio=med_cur / med_base if med_base else math.inf,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_value=float(p),
        cv_baseline=robust_cv(base),
        cv_current=robust_cv(cur),
    )


def geometric_mean(values: Iterable[float]) -> float:
    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0 or np.any(x <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(x))))
