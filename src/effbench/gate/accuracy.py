"""The gate's accuracy rule: a cell whose top-1 fell by more than `max_drop` points, significantly
(p < alpha), is an accuracy regression, whatever its speed did. Two drops are checked:

- against the baseline: the same cell's top-1 then and now, on the same images (same dataset hash):
  McNemar's paired test over the per-image outcomes both records store, else a two-proportion test;
- against its own fp32 reference: the record's `drop` (int8 vs fp32 PyTorch / ONNX Runtime on the same
  images, McNemar p). A drop the baseline already had beyond the limit is reported, not failed: the
  gate catches what changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from effbench.accuracy import metrics

DEFAULT_MAX_DROP = 0.5  # top-1 points


@dataclass
class AccuracyCheck:
    regression: bool
    reason: str
    baseline_top1: float | None = None
    current_top1: float | None = None
    drop: float | None = None  # points lost against the baseline (or the reference, see `against`)
    drop_ci: list[float] | None = None
    p_value: float | None = None
    against: str = "baseline"  # "baseline" | "reference"
    test: str = ""  # "mcnemar" | "two-proportion"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _top1(acc: dict[str, Any] | None) -> float | None:
    return _num((acc or {}).get("top1"))


def _versus_baseline(b: dict[str, Any], c: dict[str, Any], max_drop: float, alpha: float) -> AccuracyCheck:
    bt, ct = _top1(b), _top1(c)
    out = AccuracyCheck(False, "", bt, ct)
    if b.get("dataset_hash") != c.get("dataset_hash") or b.get("images") != c.get("images"):
        out.reason = (
            f"top-1 {bt:.2f} -> {ct:.2f} %, but on different evaluation images (dataset hash "
            f"{str(b.get('dataset_hash'))[:12]} vs {str(c.get('dataset_hash'))[:12]}): not compared"
        )
        out.warnings.append("accuracy measured on different images than the baseline's: not compared")
        return out
    n = int(c["images"])
    paired = None
    if b.get("correct") and c.get("correct"):
        try:
            paired = metrics.PairedTable.from_correct(
                metrics.unpack_correct(b["correct"], n), metrics.unpack_correct(c["correct"], n)
            )
        except (ValueError, TypeError):
            paired = None
    if paired is not None:
        lo, hi = metrics.paired_difference_ci(paired)
        out.drop, out.p_value, out.test = (
            100 * paired.drop,
            metrics.mcnemar_p(paired.ref_only, paired.test_only),
            "mcnemar",
        )
    else:
        k1, k2 = round((bt or 0.0) * n / 100), round((ct or 0.0) * n / 100)  # both measured: check_accuracy
        lo, hi = metrics.unpaired_difference_ci(k1, n, k2, n)
        out.drop, out.p_value, out.test = 100 * (k1 - k2) / n, metrics.two_proportion_p(k1, n, k2, n), "two-proportion"
    out.drop_ci = [100 * lo, 100 * hi]
    return _judge(out, max_drop, alpha, f"top-1 {bt:.2f} -> {ct:.2f} % on the same {n} images")


def _judge(out: AccuracyCheck, max_drop: float, alpha: float, what: str) -> AccuracyCheck:
    ci = f"[{out.drop_ci[0]:+.2f}, {out.drop_ci[1]:+.2f}]" if out.drop_ci else ""
    stated = f"{what}: {out.drop:+.2f} points {ci} lost, {out.test} p={out.p_value:.2g}"
    drop, p = out.drop or 0.0, 1.0 if out.p_value is None else out.p_value
    out.regression = drop > max_drop and p < alpha
    if out.regression:
        out.reason = f"{stated} (> {max_drop:g} points and p < {alpha:g})"
    elif drop > max_drop:
        out.reason = f"{stated}: beyond {max_drop:g} points but not significant (p >= {alpha:g})"
    else:
        out.reason = f"{stated}: within {max_drop:g} points"
    return out


def _versus_reference(c: dict[str, Any], max_drop: float, alpha: float) -> AccuracyCheck | None:
    drop, p = _num(c.get("drop")), _num(c.get("mcnemar_p"))
    if drop is None or p is None:
        return None
    ref = c.get("reference") or {}
    out = AccuracyCheck(False, "", _num(ref.get("top1")), _top1(c), drop, c.get("drop_ci"), p, "reference", "mcnemar")
    return _judge(out, max_drop, alpha, f"against its fp32 {ref.get('runtime', 'reference')} reference")


def check_accuracy(
    base: dict[str, Any] | None, cur: dict[str, Any] | None, *, max_drop: float = DEFAULT_MAX_DROP, alpha: float = 0.01
) -> AccuracyCheck | None:
    """The accuracy verdict of a cell from the two records' `accuracy` blocks; None when neither has one."""
    if _top1(cur) is None:
        if _top1(base) is None:
            return None
        return AccuracyCheck(
            False,
            "current run has no accuracy measurement",
            _top1(base),
            None,
            warnings=[f"baseline measured top-1 {_top1(base):.2f} %, the current run did not (add --eval DIR)"],
        )
    checks = []
    if base is not None and cur is not None and _top1(base) is not None:
        checks.append(_versus_baseline(base, cur, max_drop, alpha))
    own = _versus_reference(cur or {}, max_drop, alpha)
    if own is not None:
        before = _versus_reference(base or {}, max_drop, alpha)
        if own.regression and before is not None and before.regression:
            own.regression = False
            own.warnings.append(
                f"known accuracy cost: the baseline already lost {before.drop:.2f} points against its reference"
            )
        checks.append(own)
    failing = [c for c in checks if c.regression]
    chosen = failing[0] if failing else checks[0]
    chosen.warnings = [w for c in checks for w in c.warnings]
    if len(checks) > 1:
        chosen.reason = "; ".join(c.reason for c in (failing or checks))
    return chosen
