"""Per-cell verdicts and the gate report.

A cell is a `regression` only when the change is both statistically significant (block-median
Mann-Whitney p < alpha) and practically large (the whole 95% CI of the ratio lies beyond
1 + threshold). `improvement` is the mirror image in log space (the CI lies beyond 1/(1+threshold)),
so swapping baseline and current swaps the two verdicts exactly. See docs/gate.md.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

from effbench.errors import UsageError
from effbench.gate.accuracy import DEFAULT_MAX_DROP, check_accuracy
from effbench.gate.cells import FAILED_STATUSES, Cell, cell_from_records, group, key_of
from effbench.gate.stats import MIN_BLOCKS, compare_samples, geometric_mean, min_samples
from effbench.harness.result import Result, as_result

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no change"
INCONCLUSIVE = "inconclusive"
PARITY_FAILURE = "parity failure"
ACCURACY_REGRESSION = "accuracy regression"
FAILED = "failed"
NEW = "new"
MISSING = "missing"

FAILING = (REGRESSION, ACCURACY_REGRESSION, PARITY_FAILURE, FAILED)
COMPARED = (REGRESSION, IMPROVEMENT, NO_CHANGE)  # verdicts whose ratio enters the geometric mean

NOISE_CV = 0.10


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    # Smallest block for the test; None: a single figure per run, no test.
    # Energy windows already average many inferences, so each window is its own block.
    min_block_size: int | None


METRICS = {
    "latency": Metric("latency", "ms", False, 5),
    "throughput": Metric("throughput", "img/s", True, 5),
    "memory": Metric("memory", "MB", False, None),
    "energy": Metric("energy", "J/img", False, 1),
}


@dataclass
class CellVerdict:
    label: str
    config_hash: str | None
    verdict: str
    reason: str = ""
    baseline: float | None = None  # median (or the single figure)
    current: float | None = None
    ratio: float | None = None  # current / baseline
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n_baseline: int | None = None
    n_current: int | None = None
    cv_baseline: float | None = None
    cv_current: float | None = None
    warnings: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # gate.accuracy.AccuracyCheck of the cell, when measured

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


@dataclass
class Report:
    metric: Metric
    threshold: float
    alpha: float
    baseline: str
    current: str
    cells: list[CellVerdict]
    max_accuracy_drop: float = DEFAULT_MAX_DROP

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.cells:
            out[c.verdict] = out.get(c.verdict, 0) + 1
        return out

    def geomean(self) -> tuple[float, int]:
        """Geometric mean of current/baseline ratios over the cells actually compared."""
        ratios = [c.ratio for c in self.cells if c.verdict in COMPARED and c.ratio]
        return geometric_mean(ratios), len(ratios)

    def failing(self, fail_on: str = "regression") -> list[CellVerdict]:
        kinds = FAILING + ((INCONCLUSIVE,) if fail_on == "inconclusive" else ())
        return [c for c in self.cells if c.verdict in kinds]

    def exit_code(self, fail_on: str = "regression") -> int:
        return 1 if self.failing(fail_on) else 0

    def to_dict(self, fail_on: str = "regression") -> dict[str, Any]:
        gm, n = self.geomean()
        return {
            "schema_version": 1,
            "metric": self.metric.name,
            "unit": self.metric.unit,
            "higher_is_better": self.metric.higher_is_better,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "max_accuracy_drop": self.max_accuracy_drop,
            "fail_on": fail_on,
            "baseline": self.baseline,
            "current": self.current,
            "exit_code": self.exit_code(fail_on),
            "counts": self.counts(),
            "geomean_ratio": gm if math.isfinite(gm) else None,
            "geomean_cells": n,
            "cells": [c.to_dict() for c in self.cells],
        }


def _beyond(low: float, high: float, threshold: float, higher_is_better: bool) -> tuple[bool, bool]:
    """(worse, better): the whole interval [low, high] of ratios lies beyond the threshold."""
    above, below = low > 1 + threshold, high < 1 / (1 + threshold)
    return (below, above) if higher_is_better else (above, below)


def decide(
    ratio: float,
    ci_low: float,
    ci_high: float,
    p: float,
    *,
    alpha: float,
    threshold: float,
    higher_is_better: bool = False,
) -> tuple[str, str]:
    """The verdict for a tested cell, and why."""
    worse, better = _beyond(ci_low, ci_high, threshold, higher_is_better)
    ci = f"95% CI [{ci_low:.3f}, {ci_high:.3f}]"
    if p >= alpha:
        return NO_CHANGE, f"not significant: p={p:.2g} >= alpha {alpha:g}"
    if worse:
        return REGRESSION, f"p={p:.2g} < {alpha:g} and {ci} lies beyond the {threshold:.1%} threshold"
    if better:
        return IMPROVEMENT, f"p={p:.2g} < {alpha:g} and {ci} lies beyond the {threshold:.1%} threshold"
    return NO_CHANGE, f"significant (p={p:.2g}) but {ci} does not clear the {threshold:.1%} threshold"


def _values(cell: Cell, metric: Metric) -> tuple[list[float] | float | None, str]:
    """The cell's samples (or single figure) for the metric, or None and why there are none."""
    if metric.name == "latency":
        return cell.samples_ms or None, "no latency samples"
    if metric.name == "throughput":
        if not cell.samples_ms or min(cell.samples_ms) <= 0:
            return None, "no positive latency samples to derive throughput from"
        return [cell.batch_size * 1000.0 / s for s in cell.samples_ms], ""
    if metric.name == "memory":
        peak = (cell.memory or {}).get("peak_rss_mb")
        return (float(peak), "") if peak else (None, "no peak_rss_mb figure")
    energy = cell.energy or {}
    if energy.get("available") is False:
        return None, f"energy not measured: {energy.get('reason', 'unavailable')}"
    return energy.get("samples_j_per_image") or None, "no energy window samples"


def _measure(base: Cell, cur: Cell, metric: Metric, threshold: float, alpha: float) -> CellVerdict:
    out = CellVerdict(label=cur.label, config_hash=cur.config_hash, verdict=INCONCLUSIVE)
    b, why_b = _values(base, metric)
    c, why_c = _values(cur, metric)
    if b is None or c is None:
        out.reason = f"baseline: {why_b}" if b is None else f"current: {why_c}"
        return out

    if isinstance(b, float) and isinstance(c, float):  # one figure per run: no test possible
        out.baseline, out.current, out.ratio = b, c, c / b
        worse, better = _beyond(c / b, c / b, threshold, metric.higher_is_better)
        out.verdict = REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE
        out.reason = (
            f"single figure per run: ratio {c / b:.3f} compared with the {threshold:.1%} "
            "threshold directly, no statistical test"
        )
        return out

    if not isinstance(b, list) or not isinstance(c, list) or metric.min_block_size is None:
        out.reason = "the baseline and the current run hold different kinds of figures for this metric"
        return out
    out.n_baseline, out.n_current = len(b), len(c)
    need = min_samples(metric.min_block_size)
    if len(b) < need or len(c) < need:
        out.baseline, out.current = statistics.median(b), statistics.median(c)
        out.reason = (
            f"too few samples (baseline {len(b)}, current {len(c)}): need at least {need} "
            f"per side ({MIN_BLOCKS} blocks of {metric.min_block_size})"
        )
        return out

    s = compare_samples(b, c, min_block_size=metric.min_block_size)
    out.baseline, out.current, out.ratio = s.median_baseline, s.median_current, s.ratio
    out.ci_low, out.ci_high, out.p_value = s.ci_low, s.ci_high, s.p_value
    out.cv_baseline, out.cv_current = s.cv_baseline, s.cv_current
    noisy = [
        f"{side} CV {cv:.0%}" for side, cv in (("baseline", s.cv_baseline), ("current", s.cv_current)) if cv > NOISE_CV
    ]
    if noisy:
        out.reason = f"too noisy: {', '.join(noisy)} > {NOISE_CV:.0%}"
        return out
    out.verdict, out.reason = decide(
        s.ratio,
        s.ci_low,
        s.ci_high,
        s.p_value,
        alpha=alpha,
        threshold=threshold,
        higher_is_better=metric.higher_is_better,
    )
    return out


def env_facts(env: dict[str, Any] | None) -> dict[str, str]:
    """The environment facts that change performance: CPU, GPU, driver, library versions."""
    env = env or {}
    facts: dict[str, str] = {}
    if env.get("cpu_model"):
        facts["CPU"] = str(env["cpu_model"])
    gpu = env.get("gpu")
    gpus = gpu if isinstance(gpu, list) else [gpu] if gpu else []
    names = [str(n) for n in (g.get("name") if isinstance(g, dict) else g for g in gpus) if n]
    if names:
        facts["GPU"] = ", ".join(names)
    drivers = sorted({str(g["driver"]) for g in gpus if isinstance(g, dict) and g.get("driver")})
    if drivers:
        facts["GPU driver"] = ", ".join(drivers)
    for lib, version in sorted((env.get("versions") or {}).items()):
        if version:
            facts[lib] = str(version)
    return facts


def env_differences(base_env: dict[str, Any] | None, cur_env: dict[str, Any] | None) -> list[str]:
    b, c = env_facts(base_env), env_facts(cur_env)
    if not b or not c:  # one side has no fingerprint at all: nothing meaningful to compare
        return []
    return [f"{k}: {b.get(k, '-')} -> {c.get(k, '-')}" for k in sorted(b.keys() | c.keys()) if b.get(k) != c.get(k)]


def compare_pair(
    base: Cell | None,
    cur: Cell | None,
    *,
    metric: Metric,
    threshold: float,
    alpha: float,
    notes: tuple[str, ...] = (),
    max_accuracy_drop: float = DEFAULT_MAX_DROP,
) -> CellVerdict:
    if base is None:
        assert cur is not None  # a pair from `match` has at least one side
        return CellVerdict(cur.label, cur.config_hash, NEW, "only in the current run")
    if cur is None:
        return CellVerdict(base.label, base.config_hash, MISSING, "only in the baseline")

    if base.status != "ok" and cur.status == "ok":
        out = CellVerdict(
            cur.label, cur.config_hash, INCONCLUSIVE, f"baseline cell is {base.status}: nothing to compare against"
        )
    else:
        out = _measure(base, cur, metric, threshold, alpha)
    if base.label != cur.label:
        out.label = f"{base.label} vs {cur.label}"

    if cur.status in FAILED_STATUSES:
        out.verdict, out.reason = FAILED, f"{cur.status}: {cur.error or 'no error message'}"
    elif cur.status == "skipped":
        out.verdict, out.reason = INCONCLUSIVE, f"current cell was skipped: {cur.error or 'no reason given'}"
    elif cur.parity and cur.parity.get("ok") is False:
        p = cur.parity
        shown = ", ".join(
            f"{k} {p[k]:.3g}" for k in ("max_abs_err", "cosine", "top1_agreement") if isinstance(p.get(k), (int, float))
        )
        out.verdict, out.reason = PARITY_FAILURE, f"outputs differ from the reference ({shown})"
    out.warnings = [*notes, *(f"environment differs: {d}" for d in env_differences(base.env, cur.env))]
    acc = (
        check_accuracy(base.accuracy, cur.accuracy, max_drop=max_accuracy_drop, alpha=alpha)
        if cur.status == "ok"
        else None
    )
    if acc is not None:
        out.accuracy = acc.to_dict()
        out.warnings += acc.warnings
        if acc.regression and out.verdict not in (FAILED, PARITY_FAILURE):
            speed = f"; {metric.name}: {out.verdict}: {out.reason}" if out.reason else ""
            out.verdict, out.reason = ACCURACY_REGRESSION, f"accuracy: {acc.reason}{speed}"
    return out


def match(base_cells: list[Cell], cur_cells: list[Cell]) -> list[tuple[Cell | None, Cell | None, tuple[str, ...]]]:
    """Pairs by configuration hash; then, among the leftovers, by label where the label is unique on
    both sides (the configuration changed in a way the label does not show: say so)."""
    cur_by_key = {c.key: c for c in cur_cells}
    paired = {b.key: cur_by_key.pop(b.key) for b in base_cells if b.key in cur_by_key}
    left_base = [b for b in base_cells if b.key not in paired]
    by_label = group(cur_by_key.values(), key=lambda c: c.label)
    base_labels = group(left_base, key=lambda c: c.label)

    pairs: list[tuple[Cell | None, Cell | None, tuple[str, ...]]] = []
    for b in base_cells:
        if b.key in paired:
            pairs.append((b, paired[b.key], ()))
        elif len(base_labels[b.label]) == 1 and len(by_label.get(b.label, [])) == 1:
            c = by_label.pop(b.label)[0]
            del cur_by_key[c.key]
            pairs.append((b, c, (f"configuration changed (config_hash {b.config_hash} -> {c.config_hash})",)))
        else:
            pairs.append((b, None, ()))
    pairs.extend((None, c, ()) for c in cur_by_key.values())
    return pairs


def check_options(metric: str, threshold: float, alpha: float, max_accuracy_drop: float = DEFAULT_MAX_DROP) -> Metric:
    if not 0 <= max_accuracy_drop < 100:
        raise UsageError(
            f"--max-accuracy-drop {max_accuracy_drop:g}: give top-1 points between 0 and 100 "
            f"(default {DEFAULT_MAX_DROP:g})"
        )
    if metric not in METRICS:
        raise UsageError(f"unknown metric '{metric}': choose one of {', '.join(METRICS)}")
    if not 0 < threshold < 1:
        raise UsageError(f"threshold {threshold:g} must be between 0 and 1 (e.g. 5% or 0.05)")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha {alpha:g} must be between 0 and 1 (e.g. 0.01)")
    return METRICS[metric]


def compare(
    base_cells: list[Cell],
    cur_cells: list[Cell],
    *,
    metric: str = "latency",
    threshold: float = 0.05,
    alpha: float = 0.01,
    baseline: str = "baseline",
    current: str = "current",
    max_accuracy_drop: float = DEFAULT_MAX_DROP,
) -> Report:
    """The gate: every cell of the baseline and the current run, matched and judged."""
    m = check_options(metric, threshold, alpha, max_accuracy_drop)
    cells = [
        compare_pair(b, c, metric=m, threshold=threshold, alpha=alpha, notes=notes, max_accuracy_drop=max_accuracy_drop)
        for b, c, notes in match(base_cells, cur_cells)
    ]
    return Report(m, threshold, alpha, baseline, current, cells, max_accuracy_drop)


def ab_verdicts(
    a_records: Iterable[Result | Mapping[str, Any]],
    b_records: Iterable[Result | Mapping[str, Any]],
    *,
    threshold: float = 0.05,
    alpha: float = 0.01,
    metric: str = "latency",
    key: Callable[[Result], str] | None = None,
) -> Report:
    """A (baseline) against B (current) from results (or their JSON records) measured in one session.

    Results of one configuration (several interleaved rounds) are pooled into one cell, samples in
    the order given. A and B usually differ in configuration on purpose, so cells pair by `key`
    when given, else by configuration hash when both sides hold the same configurations, else by
    order of first appearance (the i-th configuration of A against the i-th of B).
    """
    m = check_options(metric, threshold, alpha)
    a_groups = group(map(as_result, a_records), key or key_of)
    b_groups = group(map(as_result, b_records), key or key_of)
    if key is not None or a_groups.keys() == b_groups.keys():
        if a_groups.keys() != b_groups.keys():
            only = sorted(a_groups.keys() ^ b_groups.keys())
            raise UsageError(f"A and B do not hold the same cells: {', '.join(only)} on one side only")
        pairs = [(a_groups[k], b_groups[k]) for k in a_groups]
    else:
        if len(a_groups) != len(b_groups):
            raise UsageError(f"A has {len(a_groups)} configurations and B {len(b_groups)}: cannot pair them")
        pairs = list(zip(a_groups.values(), b_groups.values()))
    cells = [
        compare_pair(cell_from_records(a), cell_from_records(b), metric=m, threshold=threshold, alpha=alpha)
        for a, b in pairs
    ]
    return Report(m, threshold, alpha, "A", "B", cells)
