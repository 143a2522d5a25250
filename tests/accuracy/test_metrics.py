"""The accuracy statistics against independent computations and their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from effbench.accuracy import metrics as m


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (81, 263), (487, 500), (1, 1797)])
def test_wilson_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert m.wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_wilson_known_value():
    assert m.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # textbook value for 5/10


def test_mcnemar_exact_and_asymptotic():
    assert m.mcnemar_p(0, 6) == pytest.approx(2 * 0.5**6)  # all six discordant pairs one way
    assert m.mcnemar_p(3, 3) == pytest.approx(1.0)
    assert m.mcnemar_p(0, 0) == 1.0
    # large counts: the continuity-corrected chi-square is close to the exact binomial test
    exact = binomtest(59, 180, 0.5).pvalue
    assert m.mcnemar_p(121, 59) == pytest.approx(exact, rel=0.3)
    assert m.mcnemar_p(121, 59) < 1e-4
    assert m.mcnemar_p(12, 13) > 0.5


def test_paired_interval_covers_the_true_drop():
    """Simulated paired outcomes with a known drop: the 95% interval covers it about 95% of the time."""
    rng = np.random.default_rng(1)
    n, p_ref, flip_down, flip_up = 300, 0.9, 0.04, 0.02
    true_drop = p_ref * flip_down - (1 - p_ref) * flip_up
    covered = 0
    runs = 1500
    for _ in range(runs):
        ref = rng.random(n) < p_ref
        u = rng.random(n)
        test = np.where(ref, u >= flip_down, u < flip_up)
        lo, hi = m.paired_difference_ci(m.PairedTable.from_correct(ref, test))
        covered += lo <= true_drop <= hi
    assert 0.92 <= covered / runs <= 0.985


def test_paired_interval_is_narrower_than_unpaired_for_agreeing_models():
    ref = np.r_[np.ones(450, bool), np.zeros(50, bool)]
    test = ref.copy()
    test[:3] = False  # three images lost, nothing gained
    t = m.PairedTable.from_correct(ref, test)
    lo, hi = m.paired_difference_ci(t)
    ulo, uhi = m.unpaired_difference_ci(450, 500, 447, 500)
    assert t.drop == pytest.approx(3 / 500)
    assert lo <= t.drop <= hi and hi - lo < (uhi - ulo) / 2
    same = m.PairedTable.from_correct(ref, ref)
    lo0, hi0 = m.paired_difference_ci(same)
    assert lo0 <= 0 <= hi0 and hi0 - lo0 < 0.02


def test_two_proportion_test():
    assert m.two_proportion_p(450, 500, 450, 500) == pytest.approx(1.0)
    assert m.two_proportion_p(480, 500, 400, 500) < 1e-6


def test_correctness_code_round_trips():
    bits = np.random.default_rng(0).random(1001) < 0.7
    code = m.pack_correct(bits)
    assert len(code) < 200
    assert np.array_equal(m.unpack_correct(code, 1001), bits)
    with pytest.raises(ValueError):
        m.unpack_correct(code, 2000)
