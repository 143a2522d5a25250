"""Where Core ML runs each op of an ML Program: its compute plan (coremltools' MLComputePlan, macOS
14.4 and later) gives, per op, the device Core ML prefers (Neural Engine, GPU, CPU) and the op's
estimated share of the model's cost. The session stores both with the result, and a one-line
summary such as "82% of estimated cost on the Neural Engine, 6 ops on CPU". The requested compute
units say only what Core ML may use; this says what it will."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from ..session import first_line

DEVICE_NAMES = {"neural_engine": "Neural Engine", "gpu": "GPU", "cpu": "CPU"}


def device_kind(device: Any) -> Optional[str]:
    """coremltools' MLNeuralEngineComputeDevice / MLGPUComputeDevice / MLCPUComputeDevice -> a kind."""
    name = type(device).__name__.lower()
    for marker, kind in (("neuralengine", "neural_engine"), ("gpu", "gpu"), ("cpu", "cpu")):
        if marker in name:
            return kind
    return None


def operations(block: Any) -> Iterator[Any]:
    """The operations of a program block, those of nested blocks (loops, conditions) included."""
    for op in block.operations:
        yield op
        for inner in getattr(op, "blocks", None) or []:
            yield from operations(inner)


def _plural(n: int) -> str:
    return "%d op%s" % (n, "" if n == 1 else "s")


def summarize(ops: List[Dict[str, Any]]) -> Dict[str, Any]:
    """ops: {"op", "device" (a kind or None), "cost" (share of the model, 0-1, or None)} per operation."""
    devices: Dict[str, Dict[str, Any]] = {}
    for o in ops:
        d = devices.setdefault(o["device"] or "unknown", {"ops": 0, "cost": 0.0})
        d["ops"] += 1
        d["cost"] += o["cost"] or 0.0
    total = sum(d["cost"] for d in devices.values())
    for d in devices.values():
        d["cost_share"] = round(d["cost"] / total, 4) if total > 0 else None
        d["cost"] = round(d["cost"], 6)
    if not devices:
        return {"summary": "no operations in the compute plan", "devices": {}, "ops": []}
    main = max(devices, key=lambda k: (devices[k]["cost"], devices[k]["ops"]))
    share = devices[main]["cost_share"]
    parts = [
        "%.0f%% of estimated cost on the %s" % (100 * share, DEVICE_NAMES.get(main, main))
        if share is not None
        else "%s on the %s (no cost estimates)" % (_plural(devices[main]["ops"]), DEVICE_NAMES.get(main, main))
    ]
    for kind in sorted(k for k in devices if k != main):
        parts.append("%s on %s" % (_plural(devices[kind]["ops"]), DEVICE_NAMES.get(kind, kind)))
    return {"summary": ", ".join(parts), "devices": devices, "ops": ops, "source": "MLComputePlan"}


def compute_plan(ct: Any, model: Any, compute_units: str) -> Dict[str, Any]:
    """The placement of a loaded MLModel's ops, or {"unavailable": why} (older macOS or coremltools,
    a NeuralNetwork model, no Core ML framework)."""
    try:
        from coremltools.models.compute_plan import MLComputePlan

        plan = MLComputePlan.load_from_path(
            model.get_compiled_model_path(), compute_units=getattr(ct.ComputeUnit, compute_units.upper())
        )
        program = plan.model_structure.program
        if program is None:
            return {"unavailable": "not an ML Program: Core ML gives no per-op compute plan for it"}
        ops = []
        for op in operations(program.functions["main"].block):
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            cost = plan.get_estimated_cost_for_mlprogram_operation(op)
            ops.append(
                {
                    "op": op.operator_name,
                    "device": device_kind(usage.preferred_compute_device) if usage is not None else None,
                    "cost": float(cost.weight) if cost is not None else None,
                }
            )
        return summarize(ops)
    except Exception as e:  # the measurement stands without it
        return {"unavailable": "Core ML compute plan not available: %s" % first_line(e)}
