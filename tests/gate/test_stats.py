import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from effbench.gate.stats import (
    MAX_BLOCKS,
    MIN_BLOCKS,
    _bootstrap_medians,
    compare_samples,
    geometric_mean,
    robust_cv,
    split_blocks,
)

from .records import samples


@pytest.mark.parametrize("n", [50, 51, 149, 2000])
def test_blocks_keep_order_and_every_sample(n):
    x = np.arange(n, dtype=float)
    blocks = split_blocks(x, 5)
    assert MIN_BLOCKS <= len(blocks) <= MAX_BLOCKS
    assert np.array_equal(np.concatenate(blocks), x)
    sizes = {b.size for b in blocks}
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 5


def test_too_few_samples_for_blocks():
    with pytest.raises(ValueError, match="fewer than 50"):
        split_blocks(np.ones(49), 5)


@pytest.mark.parametrize("n", [50, 77, 1000])
def test_bootstrap_median_matches_resampling_by_hand(n):
    x = np.round(np.random.default_rng(n).normal(10, 1, n), 1)  # rounded: ties on purpose
    blocks = split_blocks(x, 5)
    fast = _bootstrap_medians(blocks, 300, np.random.default_rng(7))
    drawn = np.random.default_rng(7).integers(0, len(blocks), size=(300, len(blocks)))
    slow = [np.median(np.concatenate([blocks[i] for i in row])) for row in drawn]
    assert np.allclose(fast, slow)


def test_robust_cv_reads_normal_noise_and_ignores_a_spike():
    x = np.array(samples(1.0, cv=0.30, n=4000))
    assert robust_cv(x) == pytest.approx(0.30, rel=0.1)
    calm = np.array(samples(1.0, cv=0.02, n=4000))
    calm[100] = 500.0  # one preempted iteration
    assert robust_cv(calm) < 0.03


def test_ratio_and_ci_cover_a_known_shift_reproducibly():
    base, cur = samples(1.0, seed=1), samples(1.15, seed=2)
    a, b = compare_samples(base, cur), compare_samples(base, cur)
    assert a == b  # seeded bootstrap
    assert a.ci_low < 1.15 < a.ci_high
    assert a.ratio == pytest.approx(1.15, rel=0.01)
    assert a.p_value < 1e-6


def _ar1(n, phi, seed):
    """Latencies whose noise lingers: each sample remembers 97% of the previous deviation."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0, 0.02, n)
    dev = np.empty(n)
    dev[0] = e[0]
    for i in range(1, n):
        dev[i] = phi * dev[i - 1] + e[i] * np.sqrt(1 - phi**2)
    return 1.0 + dev


def test_block_medians_tame_autocorrelation():
    # Same distribution on both sides; raw samples treated as independent cry wolf, blocks do not.
    raw_hits = block_hits = 0
    for seed in range(20):
        base, cur = _ar1(3000, 0.97, seed), _ar1(3000, 0.97, 100 + seed)
        raw_hits += mannwhitneyu(cur, base).pvalue < 0.01
        block_hits += compare_samples(base, cur).p_value < 0.01
    assert raw_hits >= 8
    assert block_hits <= 2


def test_geometric_mean():
    assert geometric_mean([1.1, 1 / 1.1]) == pytest.approx(1.0)
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert np.isnan(geometric_mean([]))
