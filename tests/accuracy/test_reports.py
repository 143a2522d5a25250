"""Reports with measured accuracy: measured top-1 (with its interval) preferred and marked against the
card's, the fp32 -> int8 precision view and the Markdown summary's two tables."""

from __future__ import annotations

import numpy as np
import pytest

from effbench.harness.result import Result, as_result
from effbench.reports.data import to_row, top1_of
from effbench.reports.html import VIEW_IDS, render_html
from effbench.reports.markdown import render_markdown
from effbench.reports.views.precision import precision_pairs
from effbench.reports.views.speed import speed_section

from .records import accuracy_block, images, measured, outcomes

N = 2000


@pytest.fixture(scope="module")
def pair():
    """fp32 and int8 cells of one model on one backend, evaluated on the same images; int8 loses ~3 points."""
    imgs = images(N)
    fp32_ok = outcomes(N, 0.80, seed=1)
    int8_ok = fp32_ok & (np.random.default_rng(2).random(N) > 0.04)
    fp32 = measured("efficientvit_m0", "openvino", "fp32", 2.0, accuracy_block(imgs, fp32_ok, fp32_ok))
    int8 = measured(
        "efficientvit_m0", "openvino", "int8", 1.2, accuracy_block(imgs, int8_ok, fp32_ok), precision_ran="int8"
    )
    int8["quantization"] = {
        "method": "nncf",
        "int8_macs_share": 0.93,
        "calibration": {"source": "generated", "warning": "latency is representative"},
    }
    card = measured("mobilenetv3_large_100", "openvino", "fp32", 1.5, None)
    return fp32, int8, card, fp32_ok, int8_ok


def test_measured_top1_wins_over_the_card_with_its_interval(pair):
    fp32, _, card, fp32_ok, _ = pair
    value, source = top1_of(as_result(fp32))
    assert source == "measured" and value == pytest.approx(100 * fp32_ok.mean(), abs=1e-3)
    row = to_row(as_result(fp32))
    lo, hi = row.top1_ci
    assert lo < value < hi and row.top1_text.startswith(f"{value:.1f} [")
    card_row = to_row(as_result(card))
    assert card_row.top1_source.startswith("card") and card_row.top1_text.endswith("card")
    older = Result("x", "b", extra={"measured_top1": 61.0})  # records before `accuracy`
    assert top1_of(older) == (61.0, "measured")


def test_speed_plot_marks_measured_filled_with_whiskers_and_card_open(pair):
    fp32, int8, card, *_ = pair
    section = speed_section([to_row(as_result(r)) for r in (fp32, int8, card)])
    fig = next(f for f in section.figures if f.div_id == "fig-speed-latency")
    points = [t for t in fig.data if t["meta"]["role"] == "points"]
    by_kind = {t["meta"]["top1"]: t for t in points}
    assert set(by_kind) == {"measured", "card"}
    assert by_kind["card"]["marker"]["symbol"].endswith("-open")
    assert not by_kind["measured"]["marker"]["symbol"].endswith("-open")
    rows = {r["precision"]: to_row(as_result(r)) for r in (fp32, int8)}
    meas = by_kind["measured"]
    for y, up, down in zip(meas["y"], meas["error_y"]["array"], meas["error_y"]["arrayminus"]):
        r = next(r for r in rows.values() if r.top1 == y)
        assert (y + up, y - down) == pytest.approx((r.top1_ci[1], r.top1_ci[0]))
    assert "card" not in by_kind["measured"].get("name", "") and "measured on the very session" in section.body


def test_precision_pair_ratio_and_paired_drop(pair):
    fp32, int8, card, fp32_ok, int8_ok = pair
    (x,) = precision_pairs([to_row(as_result(r)) for r in (fp32, int8, card)])
    assert x.ratio == pytest.approx(np.median(int8["samples_ms"]) / np.median(fp32["samples_ms"]), rel=1e-9)
    assert x.ratio_ci[0] < x.ratio < x.ratio_ci[1] < 1
    assert x.drop == pytest.approx(100 * (fp32_ok.mean() - int8_ok.mean()))
    assert x.drop_ci[0] < x.drop < x.drop_ci[1] and x.drop_ci[0] > 0  # a real, significant loss
    assert x.drop_basis.startswith("paired: fp32 cell vs int8 cell") and x.drop_p < 1e-6
    assert x.int8_macs_share == 0.93 and x.calibration == "generated" and x.calibration_warning


def test_precision_drop_falls_back_to_the_int8_records_own_reference(pair):
    fp32, int8, *_ = pair
    bare = dict(fp32, accuracy=None)
    (x,) = precision_pairs([to_row(as_result(r)) for r in (bare, int8)])
    assert x.drop == int8["accuracy"]["drop"] and x.drop_basis == "paired: int8 vs fp32 torch on the same images"
    no_eval = dict(int8, accuracy=None)
    (y,) = precision_pairs([to_row(as_result(r)) for r in (bare, no_eval)])
    assert y.drop is None and "--eval" in y.drop_basis and y.ratio is not None


def test_html_and_markdown_list_both(pair):
    records = list(pair[:3])
    page = render_html(records)
    assert VIEW_IDS[:2] == ["speed-accuracy", "precision"]
    assert 'id="precision"' in page and "fig-precision" in page and "generated images" in page
    md = render_markdown(records)
    lines = md.splitlines()
    assert "| top-1 % |" in lines[4] and any("card" in line for line in lines[6:9])
    int8_line = lines[lines.index("#### fp32 → int8") + 4]
    assert int8_line.startswith("| efficientvit_m0 | openvino | cpu |")
    assert "→" in int8_line and "93 %" in int8_line and "generated calibration" in int8_line
