"""Change points on series with a known truth: found where the step is, confirmed only when the gate's test
says so, and never from one odd run."""

from __future__ import annotations

import numpy as np

from effbench.site.changes import find_changes, segment
from effbench.site.history import CellHistory, Point


def _cell(medians: list[float], samples: int = 60, seed: int = 0, with_ci: bool = True) -> CellHistory:
    rng = np.random.default_rng(seed)
    points = []
    for i, m in enumerate(medians):
        raw = list(m * rng.lognormal(0, 0.03, samples)) if samples else []
        points.append(
            Point(
                id=f"run{i}",
                created_at=f"2026-11-{i + 1:02d}T00:00:00",
                status="ok",
                median=m,
                ci_low=m * 0.99 if with_ci else None,
                ci_high=m * 1.01 if with_ci else None,
                n=samples,
                commit=f"{i:040x}",
                tag="",
                versions={},
                raw_samples=raw,
            )
        )
    return CellHistory("k", "m", "b", "d", "latency", 1, "fp32", None, {}, points)


def _noisy(level: float, n: int, rng) -> list[float]:
    return list(level * (1 + rng.normal(0, 0.02, n)))


def test_a_step_is_found_where_it_is():
    exact = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        exact += segment(np.log(_noisy(5.0, 12, rng) + _noisy(5.5, 12, rng))) == [12]
    assert exact >= 18  # a 10% step in 2% noise: at its run almost always (95% over 200 seeds)


def test_noise_alone_gives_no_real_change():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        cell = _cell(_noisy(5.0, 40, rng), seed=seed)
        assert [c for c in find_changes(cell) if c.real] == [], seed


def test_one_odd_run_is_not_a_change():
    rng = np.random.default_rng(1)
    medians = _noisy(5.0, 10, rng) + [9.0] + _noisy(5.0, 10, rng)
    assert [c for c in find_changes(_cell(medians)) if c.real] == []


def test_a_real_step_is_confirmed_by_the_gate_test_with_its_size_and_ci():
    rng = np.random.default_rng(2)
    changes = find_changes(_cell(_noisy(5.0, 10, rng) + _noisy(6.0, 10, rng)))
    assert len(changes) == 1
    c = changes[0]
    assert c.real and c.verdict == "regression" and "Mann-Whitney" in c.method
    assert c.ci_low <= c.ratio <= c.ci_high and c.ci_low > 1.1 and c.ci_high < 1.3
    assert (c.before.id, c.after.id) == ("run9", "run10")


def test_a_step_below_the_threshold_is_not_real():
    rng = np.random.default_rng(3)
    cell = _cell(_noisy(5.0, 10, rng) + _noisy(5.15, 10, rng))
    assert [c for c in find_changes(cell, threshold=0.10) if c.real] == []


def test_without_samples_the_runs_cis_decide():
    rng = np.random.default_rng(4)
    medians = _noisy(5.0, 10, rng) + _noisy(6.0, 10, rng)
    changes = find_changes(_cell(medians, samples=0))
    assert len(changes) == 1 and changes[0].real and "CI" in changes[0].method
    none = find_changes(_cell(medians, samples=0, with_ci=False))
    assert none and not none[0].real and "no CI" in none[0].method
