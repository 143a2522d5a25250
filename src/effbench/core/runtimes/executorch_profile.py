"""ExecuTorch's ETDump events (read by its Inspector with the export's ETRecord) as per-kernel rows, and
the edge-graph ops behind them, for the mapping onto the ONNX graph (backends/executorch_profile.py).

XNNPACK's kernels carry no debug handle of their own: each says only the delegate call (instruction)
it ran in, and that call lists the edge ops of its partition (with their module paths), in order.
A portable kernel's OPERATOR_CALL carries its op's debug handle. The time of a delegate call outside
its kernels (dispatch, input/output copies) is one row of its own, so the rows add up to the method.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..session import LayerTime

ENVELOPES = ("Method::execute", "Method::init", "Program::load_method")
DELEGATE_CALLS = "delegate calls (outside their kernels)"
_OP_SUFFIX = re.compile(r"(_\d+)?_$")


def _times(ev: Any) -> List[float]:
    return list(ev.perf_data.raw) if getattr(ev, "perf_data", None) is not None else []


def _stats(times: List[float]) -> Dict[str, Any]:
    return {
        "mean_ms": float(np.mean(times)),
        "p10_ms": float(np.percentile(times, 10)),
        "p50_ms": float(np.percentile(times, 50)),
        "p90_ms": float(np.percentile(times, 90)),
        "calls": len(times),
    }


def _edge_ops(ev: Any, partition: Optional[int]) -> List[Dict[str, Any]]:
    """The edge-graph ops an event stands for: name ('aten_convolution_default_7'), op ('aten_convolution_default'),
    the module path it was called in ('stages.0.blocks.0.mixer.m.attn.qkvs.0.conv'), partition, debug handle."""
    handles = ev.debug_handles if isinstance(ev.debug_handles, (list, tuple)) else [ev.debug_handles]
    handle = next((h for h in handles if h is not None), None)
    out = []
    for key, hierarchy in (ev.module_hierarchy or {}).items():
        levels = list((hierarchy or {}).values())
        module = levels[-1][0] if levels and isinstance(levels[-1], (list, tuple)) else ""
        out.append(
            {
                "name": key.rstrip("_"),
                "op": _OP_SUFFIX.sub("", key),
                "module": module,
                "partition": partition,
                "handle": handle,
            }
        )
    return out


def profile_rows(events: List[Any]) -> Tuple[List[LayerTime], List[Dict[str, Any]], Optional[float]]:
    """(kernel rows, the edge ops behind them, the method's mean ms) from the Execute block's events.
    Times are means over the calls (percentiles in extra): the rows then add up to the method's mean."""
    layers: List[LayerTime] = []
    graph: List[Dict[str, Any]] = []
    calls: Dict[Any, float] = {}
    in_kernels: Dict[Any, float] = {}
    execute = None
    for ev in events:
        times = _times(ev)
        if not times:
            continue
        stats = _stats(times)
        partition = getattr(ev, "_instruction_id", None)
        if ev.name == "Method::execute":
            execute = stats["mean_ms"]
        elif ev.name in ENVELOPES or ev.name.startswith("native_call_"):
            continue  # the OPERATOR_CALL of the same op holds the kernel and its dispatch
        elif ev.name == "DELEGATE_CALL":
            calls[partition] = stats["mean_ms"]
            graph.extend(_edge_ops(ev, partition))
        elif ev.is_delegated_op:
            layers.append(
                LayerTime(
                    "%s @%s" % (ev.name, partition),
                    ev.name.split(" #")[0],
                    stats["mean_ms"],
                    [],
                    dict(stats, delegated=True, delegate=ev.delegate_backend_name, partition=partition),
                )
            )
            in_kernels[partition] = in_kernels.get(partition, 0.0) + stats["mean_ms"]
        else:
            ops = _edge_ops(ev, None)
            graph.extend(ops)
            op = ev.op_types[0] if ev.op_types else ev.name
            handle = ops[0]["handle"] if ops else None
            layers.append(
                LayerTime(
                    "%s @%s" % (op, partition), op, stats["mean_ms"], [], dict(stats, delegated=False, handle=handle)
                )
            )
    outside = sum(max(0.0, ms - in_kernels.get(p, 0.0)) for p, ms in calls.items())
    if outside > 0:
        layers.append(LayerTime(DELEGATE_CALLS, "DelegateCall", outside, [], {"calls": len(calls), "delegated": True}))
    return layers, graph, execute
