"""The gate's accuracy rule: a top-1 drop beyond --max-accuracy-drop that is also significant fails."""

from __future__ import annotations

import json

import numpy as np
import pytest

from effbench.gate.cells import pooled_cells
from effbench.gate.verdict import ACCURACY_REGRESSION, NO_CHANGE, compare
from tests.gate.test_cli import bench

from .records import accuracy_block, images, measured, outcomes

N = 3000


def _cell(block, precision="fp32"):
    return pooled_cells([measured("m", "openvino", precision, 1.0, block)])


def _lose(correct: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The same outcomes with about `share` of the correct images turned wrong."""
    return correct & (np.random.default_rng(seed).random(correct.size) >= share)


@pytest.fixture(scope="module")
def base():
    imgs = images(N)
    ok = outcomes(N, 0.8, seed=1)
    return imgs, ok


def test_significant_drop_beyond_the_limit_is_a_regression(base):
    imgs, ok = base
    worse = _lose(ok, 0.03, seed=2)  # about 2.4 points lost, same images
    (c,) = compare(_cell(accuracy_block(imgs, ok)), _cell(accuracy_block(imgs, worse))).cells
    assert c.verdict == ACCURACY_REGRESSION
    assert c.accuracy["test"] == "mcnemar" and c.accuracy["p_value"] < 0.01
    assert c.accuracy["drop"] == pytest.approx(100 * (ok.mean() - worse.mean()))
    lo, hi = c.accuracy["drop_ci"]
    assert 0 < lo < c.accuracy["drop"] < hi
    assert c.reason.startswith("accuracy: top-1") and "latency: no change" in c.reason


def test_small_or_insignificant_drops_pass(base):
    imgs, ok = base
    slight = _lose(ok, 0.003, seed=3)  # about 0.25 points: within the 0.5 limit
    (c,) = compare(_cell(accuracy_block(imgs, ok)), _cell(accuracy_block(imgs, slight))).cells
    assert c.verdict == NO_CHANGE and "within 0.5 points" in c.accuracy["reason"]
    few = images(40)
    few_ok = outcomes(40, 0.8, seed=4)
    few_worse = few_ok.copy()
    few_worse[np.flatnonzero(few_ok)[:2]] = False  # 5 points, but only two images
    (c,) = compare(_cell(accuracy_block(few, few_ok)), _cell(accuracy_block(few, few_worse))).cells
    assert c.verdict == NO_CHANGE and "not significant" in c.accuracy["reason"]
    (c,) = compare(
        _cell(accuracy_block(imgs, ok)), _cell(accuracy_block(imgs, _lose(ok, 0.03, 2))), max_accuracy_drop=5.0
    ).cells
    assert c.verdict == NO_CHANGE  # the limit is the option's


def test_different_images_are_not_compared(base):
    imgs, ok = base
    other = images(N, dataset_hash="set-b")
    (c,) = compare(_cell(accuracy_block(imgs, ok)), _cell(accuracy_block(other, _lose(ok, 0.1, 5)))).cells
    assert c.verdict == NO_CHANGE and any("different images" in w for w in c.warnings)


def test_int8_drop_against_its_own_reference(base):
    imgs, ok = base
    int8 = _lose(ok, 0.05, seed=6)
    plain = _cell(None, "int8")
    (c,) = compare(plain, _cell(accuracy_block(imgs, int8, reference=ok), "int8")).cells
    assert c.verdict == ACCURACY_REGRESSION and c.accuracy["against"] == "reference"
    known = _cell(accuracy_block(imgs, int8, reference=ok), "int8")
    (c,) = compare(known, _cell(accuracy_block(imgs, int8, reference=ok), "int8")).cells
    assert c.verdict == NO_CHANGE and any("known accuracy cost" in w for w in c.warnings)


def test_gate_command_option(base, tmp_path):
    imgs, ok = base
    base_file = tmp_path / "main.json"
    base_file.write_text(json.dumps([measured("m", "openvino", "fp32", 1.0, accuracy_block(imgs, ok))]))
    cur = tmp_path / "pr.json"
    cur.write_text(json.dumps([measured("m", "openvino", "fp32", 1.0, accuracy_block(imgs, _lose(ok, 0.03, 2)))]))
    assert bench("baseline", "save", "main", "--from", base_file, "--dir", tmp_path / "b").exit_code == 0
    r = bench("gate", "--baseline", tmp_path / "b" / "main.json", "--current", cur, "--json", tmp_path / "g.json")
    assert r.exit_code == 1 and "accuracy regression" in r.stdout
    assert json.loads((tmp_path / "g.json").read_text())["cells"][0]["accuracy"]["regression"] is True
    r = bench("gate", "--baseline", tmp_path / "b" / "main.json", "--current", cur, "--max-accuracy-drop", "3")
    assert r.exit_code == 0, r.stdout
    r = bench("gate", "--baseline", tmp_path / "b" / "main.json", "--current", cur, "--max-accuracy-drop", "lots")
    assert r.exit_code == 2 and "--max-accuracy-drop 'lots'" in r.stderr and "\n" not in r.stderr.strip()
