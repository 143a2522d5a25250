"""The verdict rule at its edges, and how a plan applies (or explains) the published settings."""

from __future__ import annotations

import math

import pytest

from effbench.claims.library import load_library, parse_card
from effbench.claims.plan import CPU_BATCH_CAP, MIN_POOLED, Overrides, Timing, plan_claim, plan_claims
from effbench.claims.verdict import DOES_NOT_HOLD, FAILED, HOLDS, INCONCLUSIVE, band, decide, judge
from effbench.errors import UsageError
from effbench.harness.result import Result
from tests.claims.cards import null_claim, write_card


@pytest.mark.parametrize(
    "lo,hi,want",
    [
        (1.35, 1.6, HOLDS),  # the whole CI at the threshold 1.5 x 0.9 counts
        (1.36, 9.0, HOLDS),  # faster than claimed still holds
        (1.0, 1.3499, DOES_NOT_HOLD),
        (1.3, 1.4, INCONCLUSIVE),
    ],
)
def test_faster_rule(lo, hi, want):
    assert decide("faster", 1.5, 0.1, lo, hi)[0] == want


@pytest.mark.parametrize(
    "lo,hi,want",
    [
        (0.9, 1.1, HOLDS),
        (0.95, 1.02, HOLDS),
        (0.5, 0.89, DOES_NOT_HOLD),
        (1.11, 1.5, DOES_NOT_HOLD),
        (0.85, 1.0, INCONCLUSIVE),
        (1.05, 1.2, INCONCLUSIVE),
    ],
)
def test_as_fast_rule(lo, hi, want):
    assert decide("as_fast", 1.0, 0.1, lo, hi)[0] == want


def test_band():
    assert band("faster", 2.0, 0.25) == (1.5, math.inf)
    assert band("as_fast", 1.0, 0.05) == (0.95, 1.05)


def _recs(ms: float, n: int, **kw) -> list[Result]:
    return [
        Result.from_dict({"model": "m", "backend": "b", "samples_ms": [ms + 0.001 * (i % 7) for i in range(n)], **kw})
    ]


def test_judge_ratio_direction_and_failures():
    v = judge("faster", 2.0, 0.1, _recs(1.0, 200), _recs(2.0, 200))  # A twice as fast as B
    assert v.verdict == HOLDS and v.ratio == pytest.approx(2.0, rel=0.01) and v.ci_low <= v.ratio <= v.ci_high
    v = judge("faster", 2.0, 0.1, _recs(2.0, 200), _recs(1.0, 200))
    assert v.verdict == DOES_NOT_HOLD and v.ratio == pytest.approx(0.5, rel=0.01)
    # per image: batch 4 at 4 ms is as fast as batch 1 at 1 ms
    v = judge("as_fast", 1.0, 0.05, _recs(4.0, 200, batch_size=4), _recs(1.0, 200))
    assert v.verdict == HOLDS and v.ratio == pytest.approx(1.0, rel=0.01)
    v = judge("faster", 2.0, 0.1, _recs(1.0, 200), [Result("m", "b", status="failed", error="export broke")])
    assert v.verdict == FAILED and "B: failed: export broke" in v.reason
    v = judge("faster", 2.0, 0.1, _recs(1.0, 200, parity={"ok": False, "max_rel_err": 0.3}), _recs(2.0, 200))
    assert v.verdict == FAILED and "parity failure" in v.reason
    v = judge("faster", 2.0, 0.1, _recs(1.0, 20), _recs(2.0, 200))
    assert v.verdict == INCONCLUSIVE and "too few samples (A 20, B 200)" in v.reason


def test_plan_interleaves_and_tags(tmp_path):
    (entry,) = parse_card(write_card(tmp_path, [null_claim("pair", 1.5)]).read_text(), "card.yaml")
    plan = plan_claim(entry, "null", "cpu", Timing(rounds=3, min_iters=5), Overrides())
    assert [s for s, _ in plan.cells] == ["A", "B", "B", "A", "A", "B"]
    assert {c.tag for _, c in plan.cells} == {"claim:pair"}
    assert {c.options["busy_us"] for s, c in plan.cells if s == "A"} == {"1000"}
    assert all(c.min_iters * 3 >= MIN_POOLED for _, c in plan.cells)


def test_plan_applies_or_explains_published_settings():
    lib = load_library()
    gpu = lib.get("efficientvit-m5-vs-mobilenetv3-large-gpu")
    (plan,) = plan_claims(gpu, ["onnxruntime"], ["cpu"], Timing(), Overrides())
    assert plan.batch == CPU_BATCH_CAP and plan.precision == "fp32"
    text = " | ".join(plan.notes)
    assert "published on Nvidia V100 GPU (gpu), measured here on cpu (cpu)" in text
    assert "published batch 2048 throughput on Nvidia V100 GPU, measured batch 16" in text
    assert "published fp16 on a gpu, measured fp32 on cpu" in text
    assert "published on PyTorch, torch.jit.trace, AMP autocast, measured with onnxruntime" in text

    cpu = lib.get("efficientvit-m5-vs-mobilenetv3-large-cpu")
    plans = plan_claims(cpu, None, None, Timing(), Overrides())  # default: the published runtime, torch
    assert [(p.backend, p.device, p.batch, p.threads) for p in plans] == [("torch", "cpu", 16, 1)]
    assert not any("measured batch" in n for n in plans[0].notes)

    # Core ML does not run here: the usual three, plus the mobile runtimes a phone claim gets
    mobile = lib.get("efficientformer-l1-vs-l7-latency")
    plans = plan_claims(mobile, None, ["cpu"], Timing(), Overrides(batch=2))
    assert [p.backend for p in plans] == ["onnxruntime", "openvino", "torch", "litert", "executorch"]
    assert any("coreml" in n and "not usable here" in n for n in plans[0].notes)
    assert plans[0].batch == 2 and any("measured batch 2 (--batch)" in n for n in plans[0].notes)

    rs = lib.get("resnet-rs-vs-efficientnet-tpu")
    (plan,) = plan_claims(rs, ["torch"], ["cpu"], Timing(), Overrides())
    assert any("training step" in n and "proxy" in n for n in plan.notes)
    assert {c.input_size for _, c in plan.cells} == {256, 380}


def test_plan_rejects_bad_devices():
    entry = load_library().get("efficientvit-m5-vs-mobilenetv3-large-cpu")
    with pytest.raises(UsageError, match="unknown device|not found|no device"):
        plan_claims(entry, ["torch"], ["no-such-device"], Timing(), Overrides())
