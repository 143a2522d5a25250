"""Accuracy statistics: Wilson score intervals, the paired and unpaired difference of two proportions
(Newcombe's hybrid score intervals), McNemar's paired test, and a compact per-image correctness code.

Proportions are fractions (0-1) here; the record stores percentages (0-100).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile
EXACT_BELOW = 25  # McNemar: exact binomial when fewer discordant pairs than this


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (0-1); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _newcombe(
    p1: float, ci1: tuple[float, float], p2: float, ci2: tuple[float, float], phi: float
) -> tuple[float, float]:
    """Interval of p1 - p2 from the two Wilson intervals and their correlation phi (0: independent)."""
    (l1, u1), (l2, u2) = ci1, ci2
    d = p1 - p2
    lower = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    upper = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, d - math.sqrt(max(lower, 0.0))), min(1.0, d + math.sqrt(max(upper, 0.0)))


@dataclass(frozen=True)
class PairedTable:
    """Per-image outcomes of a reference and a test model on the same images."""

    both: int  # both correct
    ref_only: int  # reference correct, test wrong
    test_only: int  # test correct, reference wrong
    neither: int

    @classmethod
    def from_correct(cls, ref_correct: np.ndarray, test_correct: np.ndarray) -> PairedTable:
        r, t = np.asarray(ref_correct, bool), np.asarray(test_correct, bool)
        if r.shape != t.shape:
            raise ValueError(f"paired outcomes differ in length: {r.shape} vs {t.shape}")
        return cls(int(np.sum(r & t)), int(np.sum(r & ~t)), int(np.sum(~r & t)), int(np.sum(~r & ~t)))

    @property
    def n(self) -> int:
        return self.both + self.ref_only + self.test_only + self.neither

    @property
    def drop(self) -> float:
        """Reference accuracy minus test accuracy (0-1)."""
        return (self.ref_only - self.test_only) / self.n if self.n else 0.0


def paired_difference_ci(t: PairedTable, z: float = Z95) -> tuple[float, float]:
    """95% interval of the paired drop (reference minus test accuracy): Newcombe (1998), method 10,
    Wilson intervals of both accuracies combined through the phi correlation of the 2x2 table."""
    n = t.n
    if n == 0:
        return -1.0, 1.0
    a, b, c, d = t.both, t.ref_only, t.test_only, t.neither
    p1, p2 = (a + b) / n, (a + c) / n
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    return _newcombe(p1, wilson(a + b, n, z), p2, wilson(a + c, n, z), phi)


def unpaired_difference_ci(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% interval of k1/n1 - k2/n2 for independent samples (Newcombe's hybrid score, method 10)."""
    p1, p2 = (k1 / n1 if n1 else 0.0), (k2 / n2 if n2 else 0.0)
    return _newcombe(p1, wilson(k1, n1, z), p2, wilson(k2, n2, z), 0.0)


def mcnemar_p(ref_only: int, test_only: int) -> float:
    """Two-sided McNemar test of the discordant pairs: exact binomial below EXACT_BELOW of them,
    else the chi-square statistic with continuity correction."""
    from scipy.stats import binomtest, chi2

    k = ref_only + test_only
    if k == 0:
        return 1.0
    if k < EXACT_BELOW:
        return float(binomtest(min(ref_only, test_only), k, 0.5).pvalue)
    stat = (abs(ref_only - test_only) - 1) ** 2 / k
    return float(chi2.sf(stat, 1))


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled z-test of k1/n1 against k2/n2 (independent samples)."""
    from scipy.stats import norm

    if not n1 or not n2:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * norm.sf(abs(k1 / n1 - k2 / n2) / se))


def pack_correct(correct: np.ndarray) -> str:
    """Per-image correctness as base64 of the packed bits (1 = correct), image order kept."""
    return base64.b64encode(np.packbits(np.asarray(correct, bool)).tobytes()).decode("ascii")


def unpack_correct(code: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(code), dtype=np.uint8))
    if bits.size < n:
        raise ValueError(f"correctness code holds {bits.size} images, expected {n}")
    return bits[:n].astype(bool)


def pct(fraction: float) -> float:
    """A fraction as a percentage, rounded for the record (0.01 points is below any interval's width)."""
    return round(100.0 * fraction, 4)
