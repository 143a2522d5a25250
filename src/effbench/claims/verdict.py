"""Measured ratio, its 95% CI, and the verdict of one claim on one runtime and device.

The measured ratio is A's speed over B's: median per-image latency of B / that of A (with equal
batches this is also A's throughput / B's). Its CI is the gate's block bootstrap
(effbench.gate.stats.compare_samples) over the raw samples of all rounds, pooled per side in
measurement order. The rule, with tolerance t and published ratio R:

- `faster` (A is R times faster, or has R times the throughput): holds when the whole CI lies at or
  above R * (1 - t); does not hold when the whole CI lies below it; otherwise inconclusive.
- `as_fast` (A is as fast as B): holds when the whole CI lies inside [1 - t, 1 + t]; does not hold
  when the whole CI lies outside that band; otherwise inconclusive.

A side whose cell failed, or whose outputs differ from the PyTorch reference (a fast wrong export is
not a win), makes the verdict `failed`. Fewer than 50 samples a side (10 blocks of 5): inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from effbench.gate.stats import compare_samples, min_samples
from effbench.harness.result import Result

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
FAILED = "failed"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, FAILED)

MIN_BLOCK = 5


@dataclass
class ClaimVerdict:
    verdict: str
    reason: str
    published: float
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    median_a_ms: float | None = None  # per run (one batch), as measured
    median_b_ms: float | None = None
    n_a: int = 0
    n_b: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def band(kind: str, published: float, tolerance: float) -> tuple[float, float]:
    """The interval the whole CI must lie in for the claim to hold."""
    if kind == "as_fast":
        return 1 - tolerance, 1 + tolerance
    return published * (1 - tolerance), math.inf


def rule(kind: str, published: float, tolerance: float) -> str:
    lo, hi = band(kind, published, tolerance)
    if kind == "as_fast":
        return (
            f"holds when the whole 95% CI of the measured ratio lies inside [{lo:.3g}, {hi:.3g}] (1 ± "
            f"{tolerance:.0%}); does not hold when it lies wholly outside; else inconclusive"
        )
    return (
        f"holds when the whole 95% CI of the measured ratio is at or above {lo:.3g} (published "
        f"{published:.3g} × (1 − {tolerance:.0%})); does not hold when it lies wholly below; else inconclusive"
    )


def decide(kind: str, published: float, tolerance: float, ci_low: float, ci_high: float) -> tuple[str, str]:
    lo, hi = band(kind, published, tolerance)
    ci = f"95% CI [{ci_low:.4g}, {ci_high:.4g}]"
    if kind == "as_fast":
        if lo <= ci_low and ci_high <= hi:
            return HOLDS, f"{ci} lies inside [{lo:.3g}, {hi:.3g}]"
        if ci_high < lo:
            return DOES_NOT_HOLD, f"{ci} lies below {lo:.3g}: A is slower than B"
        if ci_low > hi:
            return DOES_NOT_HOLD, f"{ci} lies above {hi:.3g}: A is faster than B, not as fast"
        return INCONCLUSIVE, f"{ci} crosses the edge of [{lo:.3g}, {hi:.3g}]"
    if ci_low >= lo:
        return HOLDS, f"{ci} is at or above {lo:.3g}"
    if ci_high < lo:
        return DOES_NOT_HOLD, f"{ci} lies below {lo:.3g}"
    return INCONCLUSIVE, f"{ci} straddles {lo:.3g}"


def _problem(side: str, results: Sequence[Result]) -> str | None:
    if not results:
        return f"{side}: no results"
    for r in results:
        if not r.ok:
            return f"{side}: {r.status}: {r.error or 'no error recorded'}"
        if r.parity is not None and r.parity.ok is False:
            return f"{side}: parity failure (max rel err {r.parity.max_rel_err:.2g} against the reference)"
    return None


def _per_image(results: Sequence[Result]) -> list[float]:
    return [float(s) / max(1, r.batch_size) for r in results for s in r.samples_ms]


def _median_run_ms(results: Sequence[Result]) -> float | None:
    import numpy as np

    samples = [float(s) for r in results for s in r.samples_ms]
    return float(np.median(samples)) if samples else None


def judge(
    kind: str, published: float, tolerance: float, a_records: Sequence[Result], b_records: Sequence[Result]
) -> ClaimVerdict:
    """The verdict from stored results of side A and side B (all rounds, in measurement order)."""
    out = ClaimVerdict(
        INCONCLUSIVE, "", published, median_a_ms=_median_run_ms(a_records), median_b_ms=_median_run_ms(b_records)
    )
    problem = _problem("A", a_records) or _problem("B", b_records)
    if problem:
        out.verdict, out.reason = FAILED, problem
        return out
    a, b = _per_image(a_records), _per_image(b_records)
    out.n_a, out.n_b = len(a), len(b)
    need = min_samples(MIN_BLOCK)
    if len(a) < need or len(b) < need:
        out.reason = (
            f"too few samples (A {len(a)}, B {len(b)}): the bootstrap needs {need} a side; "
            "raise --min-iters, --duration or --rounds"
        )
        return out
    s = compare_samples(a, b, min_block_size=MIN_BLOCK)  # ratio = median B / median A = A's speed over B's
    out.ratio, out.ci_low, out.ci_high = s.ratio, s.ci_low, s.ci_high
    out.verdict, out.reason = decide(kind, published, tolerance, s.ci_low, s.ci_high)
    return out
