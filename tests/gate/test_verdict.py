import math

import pytest

from effbench.errors import UsageError
from effbench.gate.cells import cell_from_records, pooled_cells
from effbench.gate.verdict import (
    FAILED,
    IMPROVEMENT,
    INCONCLUSIVE,
    MISSING,
    NEW,
    NO_CHANGE,
    PARITY_FAILURE,
    REGRESSION,
    ab_verdicts,
    compare,
    decide,
    env_differences,
)
from effbench.harness.result import as_result

from .records import ENV, record, samples


def judge(base_samples, cur_samples, **kw):
    """The verdict for one cell measured twice."""
    report = compare(pooled_cells([record(base_samples)]), pooled_cells([record(cur_samples)]), **kw)
    (cell,) = report.cells
    return cell


def test_same_distribution_is_no_change():
    c = judge(samples(1.0, seed=1), samples(1.0, seed=2))
    assert c.verdict == NO_CHANGE
    assert c.ci_low < 1 < c.ci_high


def test_small_significant_shift_below_threshold_is_no_change():
    c = judge(samples(1.0, seed=1), samples(1.03, seed=2), threshold=0.05)
    assert c.p_value < 0.01  # the test sees it...
    assert c.verdict == NO_CHANGE  # ...but 3% is below the 5% that counts
    assert "does not clear" in c.reason


def test_fifteen_percent_slower_is_regression_and_faster_is_improvement():
    slower = judge(samples(1.0, seed=1), samples(1.15, seed=2))
    assert slower.verdict == REGRESSION
    assert slower.ci_low > 1.05
    faster = judge(samples(1.15, seed=1), samples(1.0, seed=2))
    assert faster.verdict == IMPROVEMENT
    assert faster.ci_high < 1 / 1.05


def test_throughput_is_higher_is_better():
    c = judge(samples(1.0, seed=1), samples(1.15, seed=2), metric="throughput")
    assert c.verdict == REGRESSION
    assert c.ratio == pytest.approx(1 / 1.15, rel=0.01)
    assert c.current == pytest.approx(1000 / 1.15, rel=0.01)  # images/s at batch 1


def test_noisy_side_is_inconclusive_with_reason():
    c = judge(samples(1.0, seed=1), samples(1.15, cv=0.30, seed=2))
    assert c.verdict == INCONCLUSIVE
    assert "too noisy" in c.reason and "current CV 3" in c.reason


def test_too_few_samples_is_inconclusive_and_says_how_many():
    c = judge(samples(1.0, n=2000, seed=1), samples(1.5, n=40, seed=2))
    assert c.verdict == INCONCLUSIVE
    assert "current 40" in c.reason and "at least 50" in c.reason


@pytest.mark.parametrize(
    "p, ci, expected",
    [
        (0.00999, (1.20, 1.30), REGRESSION),
        (0.01001, (1.20, 1.30), NO_CHANGE),  # p just above alpha
        (0.001, (1.0501, 1.10), REGRESSION),
        (0.001, (1.0499, 1.10), NO_CHANGE),  # CI lower bound just below 1 + threshold
        (0.001, (0.90, 1 / 1.05 - 1e-4), IMPROVEMENT),
        (0.001, (0.90, 1 / 1.05 + 1e-4), NO_CHANGE),  # improvement mirrors in log space
    ],
)
def test_decision_edges(p, ci, expected):
    verdict, reason = decide(sum(ci) / 2, *ci, p, alpha=0.01, threshold=0.05)
    assert verdict == expected, reason


def test_decision_edges_higher_is_better_mirror():
    assert decide(0.9, 0.85, 1 / 1.05 - 1e-4, 0.001, alpha=0.01, threshold=0.05, higher_is_better=True)[0] == REGRESSION
    assert decide(0.9, 0.85, 1 / 1.05 + 1e-4, 0.001, alpha=0.01, threshold=0.05, higher_is_better=True)[0] == NO_CHANGE
    assert decide(1.2, 1.0501, 1.3, 0.001, alpha=0.01, threshold=0.05, higher_is_better=True)[0] == IMPROVEMENT


def test_memory_is_a_single_figure_compared_directly():
    base = pooled_cells([record(memory={"peak_rss_mb": 100.0})])
    grown = compare(base, pooled_cells([record(memory={"peak_rss_mb": 110.0})]), metric="memory").cells[0]
    assert grown.verdict == REGRESSION and grown.ratio == pytest.approx(1.1)
    assert grown.p_value is None and "single figure" in grown.reason
    same = compare(base, pooled_cells([record(memory={"peak_rss_mb": 103.0})]), metric="memory").cells[0]
    assert same.verdict == NO_CHANGE


def test_energy_uses_window_samples():
    def energy(j, seed):
        return {"joules_per_image": j, "samples_j_per_image": samples(j, n=12, seed=seed)}

    c = compare(
        pooled_cells([record(energy=energy(0.5, 1))]), pooled_cells([record(energy=energy(0.6, 2))]), metric="energy"
    ).cells[0]
    assert c.verdict == REGRESSION and c.n_current == 12
    off = {"available": False, "reason": "no RAPL counters"}
    c = compare(
        pooled_cells([record(energy=energy(0.5, 1))]), pooled_cells([record(energy=off)]), metric="energy"
    ).cells[0]
    assert c.verdict == INCONCLUSIVE and "no RAPL counters" in c.reason


def test_parity_failure_and_failed_cell_are_their_own_regressions():
    base = pooled_cells([record(model="a"), record(model="b")])
    bad_parity = {"max_abs_err": 0.4, "cosine": 0.91, "top1_agreement": 0.7, "ok": False}
    cur = pooled_cells(
        [
            record(samples(1.0, seed=5), model="a", parity=bad_parity),
            record(model="b", status="crashed", error="segfault in runtime"),
        ]
    )
    a, b = compare(base, cur).cells
    assert a.verdict == PARITY_FAILURE and "cosine 0.91" in a.reason
    assert a.ratio is not None  # the timing is still shown
    assert b.verdict == FAILED and "crashed: segfault in runtime" in b.reason


def test_cells_on_one_side_are_listed():
    base = pooled_cells([record(model="kept"), record(model="dropped")])
    cur = pooled_cells([record(model="kept"), record(model="added")])
    verdicts = {c.label.split("/")[0]: c.verdict for c in compare(base, cur).cells}
    assert verdicts == {"kept": NO_CHANGE, "dropped": MISSING, "added": NEW}


def test_changed_config_hash_matches_by_label_with_a_warning():
    base = pooled_cells([record(config_hash="old")])
    (c,) = compare(base, pooled_cells([record(config_hash="new")])).cells
    assert c.verdict == NO_CHANGE
    assert any("config_hash old -> new" in w for w in c.warnings)


def test_environment_difference_is_a_warning():
    env = {**ENV, "cpu_model": "Other CPU", "versions": {**ENV["versions"], "torch": "2.5.0"}}
    (c,) = compare(pooled_cells([record()]), pooled_cells([record(env=env)])).cells
    assert c.verdict == NO_CHANGE
    assert "environment differs: CPU: Test CPU 9000 -> Other CPU" in c.warnings
    assert "environment differs: torch: 2.4.0 -> 2.5.0" in c.warnings
    assert env_differences(ENV, ENV) == []


def test_gpu_and_driver_differences():
    a = {"gpu": {"name": "H100", "driver": "550.54"}}
    b = {"gpu": [{"name": "H100", "driver": "555.42"}]}
    assert env_differences(a, b) == ["GPU driver: 550.54 -> 555.42"]


def test_geometric_mean_over_compared_cells_only():
    base = pooled_cells(
        [
            record(samples(1.0, seed=1), model="a"),
            record(samples(1.0, seed=3), model="b"),
            record(samples(1.0, seed=5), model="noisy"),
        ]
    )
    cur = pooled_cells(
        [
            record(samples(1.2, seed=2), model="a"),
            record(samples(1.0, seed=4), model="b"),
            record(samples(3.0, cv=0.4, seed=6), model="noisy"),
        ]
    )
    report = compare(base, cur)
    assert [c.verdict for c in report.cells] == [REGRESSION, NO_CHANGE, INCONCLUSIVE]
    gm, n = report.geomean()
    assert n == 2
    assert gm == pytest.approx(math.sqrt(report.cells[0].ratio * report.cells[1].ratio))
    assert gm == pytest.approx(math.sqrt(1.2), rel=0.01)


def test_exit_code_and_fail_on_inconclusive():
    base = pooled_cells([record(samples(1.0, seed=1))])
    quiet = compare(base, pooled_cells([record(samples(1.0, seed=2))]))
    noisy = compare(base, pooled_cells([record(samples(1.0, cv=0.3, seed=2))]))
    slow = compare(base, pooled_cells([record(samples(1.2, seed=2))]))
    assert quiet.exit_code() == 0 and quiet.exit_code("inconclusive") == 0
    assert noisy.exit_code() == 0 and noisy.exit_code("inconclusive") == 1
    assert slow.exit_code() == 1


def test_ab_pools_interleaved_rounds():
    # Five rounds of 30 samples each: no single round is enough for a test, the pool is.
    a = [record(samples(1.0, n=30, seed=r), model="m", config_hash="A") for r in range(5)]
    b = [record(samples(1.15, n=30, seed=10 + r), model="m", config_hash="B") for r in range(5)]
    assert cell_from_records([as_result(r) for r in a]).samples_ms[:30] == a[0]["samples_ms"]
    (c,) = ab_verdicts(a, b).cells
    assert c.n_baseline == c.n_current == 150
    assert c.verdict == REGRESSION
    (single,) = ab_verdicts(a[:1], b[:1]).cells
    assert single.verdict == INCONCLUSIVE


def test_ab_pairs_same_configurations_by_key_and_refuses_mismatch():
    a = [record(samples(1.0, seed=1), model="x"), record(samples(1.0, seed=2), model="y")]
    b = [record(samples(1.0, seed=3), model="y"), record(samples(1.2, seed=4), model="x")]
    verdicts = {c.label.split("/")[0]: c.verdict for c in ab_verdicts(a, b).cells}
    assert verdicts == {"x": REGRESSION, "y": NO_CHANGE}
    with pytest.raises(UsageError, match="cannot pair"):
        ab_verdicts(a, [record(config_hash="other")])


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="unknown metric"):
        compare([], [], metric="speed")
    with pytest.raises(UsageError, match="alpha"):
        compare([], [], alpha=1.5)
