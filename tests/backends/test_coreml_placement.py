"""Core ML placement from the compute plan. An MLComputePlan can only be made by the Core ML
framework (macOS 14.4+): no compute-plan file can be written on Linux, so here the summary and the
walk over the program run on stand-ins shaped like coremltools' plan objects, and the real
coremltools is asked for a plan to show that its refusal is recorded, not raised."""

from __future__ import annotations

from types import SimpleNamespace

import coremltools as ct
import pytest

from effbench.core.runtimes import coreml_plan
from effbench.core.runtimes.coreml import on_macos


class MLNeuralEngineComputeDevice:  # stand-ins named like coremltools.models.compute_device's classes
    pass


class MLGPUComputeDevice:
    pass


class MLCPUComputeDevice:
    pass


def test_device_kinds_from_coremltools_device_classes():
    assert coreml_plan.device_kind(MLNeuralEngineComputeDevice()) == "neural_engine"
    assert coreml_plan.device_kind(MLGPUComputeDevice()) == "gpu"
    assert coreml_plan.device_kind(MLCPUComputeDevice()) == "cpu"
    assert coreml_plan.device_kind(object()) is None


def test_the_summary_names_the_main_device_by_cost_and_counts_the_others():
    ops = [{"op": "conv", "device": "neural_engine", "cost": 0.2}] * 4 + [
        {"op": "softmax", "device": "cpu", "cost": 0.03},
        {"op": "gather", "device": "cpu", "cost": 0.03},
        {"op": "reshape", "device": "gpu", "cost": 0.12},
    ]
    plan = coreml_plan.summarize(ops)
    assert plan["summary"] == "82% of estimated cost on the Neural Engine, 2 ops on CPU, 1 op on GPU"
    assert plan["devices"]["neural_engine"] == {"ops": 4, "cost": 0.8, "cost_share": pytest.approx(0.8163, abs=1e-4)}
    assert plan["ops"] == ops and plan["source"] == "MLComputePlan"
    no_costs = coreml_plan.summarize(
        [{"op": "conv", "device": "cpu", "cost": None}, {"op": "x", "device": None, "cost": None}]
    )
    assert no_costs["summary"] == "1 op on the CPU (no cost estimates), 1 op on unknown"


def test_nested_blocks_are_walked():
    inner = SimpleNamespace(operations=[SimpleNamespace(operator_name="add", blocks=[])])
    block = SimpleNamespace(
        operations=[SimpleNamespace(operator_name="cond", blocks=[inner]), SimpleNamespace(operator_name="relu")]
    )
    assert [op.operator_name for op in coreml_plan.operations(block)] == ["cond", "add", "relu"]


@pytest.mark.skipif(on_macos(), reason="on macOS the compute plan exists")
def test_without_the_core_ml_framework_the_plan_is_unavailable_with_the_reason():
    model = SimpleNamespace(get_compiled_model_path=lambda: "/nonexistent.mlmodelc")
    got = coreml_plan.compute_plan(ct, model, "all")
    assert set(got) == {"unavailable"} and got["unavailable"].startswith("Core ML compute plan not available: ")
