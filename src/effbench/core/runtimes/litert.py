"""LiteRT (TFLite) sessions: ai-edge-litert's Interpreter, XNNPACK by default (`delegate=none`: the
reference kernels). An int8 model's input and output tensors are int8: the session quantises the input
once when binding and dequantises the outputs it hands back (scale and zero point from the model).

Placement: the Interpreter lists every node of the model plus one DELEGATE node per delegated
partition; a node is XNNPACK's when it lies between a DELEGATE node's inputs and outputs.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

import numpy as np

from .. import placement
from ..session import CoreError, Session, first_line
from ..settings import MeasureSettings

DELEGATES = ("xnnpack", "none")
INT_TYPES = (np.int8, np.uint8, np.int16)


def version() -> Optional[str]:
    try:
        from importlib.metadata import version as dist_version

        return dist_version("ai-edge-litert")
    except Exception:
        return None


def probe() -> Dict[str, Any]:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as e:
        return {"missing": True, "pip": "ai-edge-litert", "error": first_line(e)}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, first_line(e))}
    return {"version": version(), "delegates": list(DELEGATES)}


def _quantize(x: np.ndarray, detail: Dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] not in INT_TYPES or not scale:
        return np.ascontiguousarray(x, dtype=detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: Dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] not in INT_TYPES or not scale:
        return np.array(y, copy=True)
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def _macs(op: Dict[str, Any], shapes: Dict[int, List[int]]) -> Optional[int]:
    """Multiply-accumulates of the compute ops (output elements x the reduction each one does)."""
    name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
    if not outs or outs[0] not in shapes or len(ins) < 2 or ins[1] not in shapes:
        return None
    out = int(np.prod(shapes[outs[0]]))
    w = shapes[ins[1]]
    if name == "CONV_2D" and len(w) == 4:  # weights O, kh, kw, I
        return out * int(w[1] * w[2] * w[3])
    if name == "DEPTHWISE_CONV_2D" and len(w) == 4:  # weights 1, kh, kw, C*M
        return out * int(w[1] * w[2])
    if name == "FULLY_CONNECTED" and len(w) == 2:  # weights O, I
        return out * int(w[1])
    if name == "BATCH_MATMUL" and ins[0] in shapes:
        return out * int(shapes[ins[0]][-1])
    if name == "TRANSPOSE_CONV" and len(ins) > 1 and ins[1] in shapes:
        w = shapes[ins[1]]
        return int(np.prod(shapes[ins[2]])) * int(w[0] * w[1] * w[2]) if len(ins) > 2 and ins[2] in shapes else None
    return None


def _delegated(ops: List[Dict[str, Any]]) -> Set[int]:
    """Indexes of the nodes a DELEGATE node replaced: walk back from its outputs to its inputs."""
    producer = {int(t): op["index"] for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    by_index = {op["index"]: op for op in ops}
    covered: Set[int] = set()
    for d in (op for op in ops if op["op_name"] == "DELEGATE"):
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            if t in stop or t not in producer or producer[t] in covered:
                continue
            covered.add(producer[t])
            todo.extend(int(i) for i in by_index[producer[t]]["inputs"])
    return covered


def _precision(op: Dict[str, Any]) -> str:
    types = [np.dtype(t).name for t in op.get("operand_types") or []]
    if any(t in ("int8", "uint8") for t in types):
        return "int8"
    if "int16" in types:
        return "int16"
    return "fp16" if "float16" in types else "fp32"


def placement_summary(interpreter, delegate: str) -> Dict[str, Any]:
    ops = list(interpreter._get_ops_details())
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    inside = _delegated(ops)
    unit = "XNNPACK" if delegate == "xnnpack" else "reference kernels"
    nodes = [
        (
            "%s_%d" % (op["op_name"].lower(), op["index"]),
            op["op_name"],
            "XNNPACK" if op["index"] in inside else "reference kernels",
            _precision(op),
            _macs(op, shapes),
        )
        for op in ops
        if op["op_name"] != "DELEGATE"
    ]
    out = placement.summarize(nodes, unit)
    out["delegate_partitions"] = sum(1 for op in ops if op["op_name"] == "DELEGATE")
    return out


class LiteRTSession(Session):
    def __init__(self, interpreter, delegate: str):
        super().__init__()
        self.interpreter, self.delegate = interpreter, delegate
        self.in_details = interpreter.get_input_details()
        self.out_details = interpreter.get_output_details()
        self._invoke = interpreter.invoke

    def bind(self, inputs):
        for detail, x in zip(self.in_details, inputs.values()):
            self.interpreter.set_tensor(detail["index"], _quantize(np.asarray(x), detail))

    def run(self):
        self._invoke()

    def outputs(self):
        return [_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.out_details]

    def close(self):
        self.interpreter = None
        self._invoke = None


def open_session(path: str, settings: MeasureSettings) -> LiteRTSession:
    """runtime_options: delegate (xnnpack | none)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise CoreError("missing_runtime", "ai-edge-litert not installed", packages=["ai-edge-litert"]) from None
    delegate = settings.runtime_options.get("delegate") or "xnnpack"
    if delegate not in DELEGATES:
        raise CoreError("bad_option", "LiteRT delegate %r: use one of %s" % (delegate, ", ".join(DELEGATES)))
    kwargs: Dict[str, Any] = {"model_path": str(path)}
    if settings.threads:
        kwargs["num_threads"] = int(settings.threads)
    if delegate == "none":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(**kwargs)
        interpreter.allocate_tensors()
    except Exception as e:
        raise CoreError("load_failed", "LiteRT could not load %s: %s" % (path, first_line(e))) from None
    session = LiteRTSession(interpreter, delegate)
    summary = placement_summary(interpreter, delegate)
    precisions: Dict[str, int] = {}
    for u in summary["units"].values():
        for p, n in u["precisions"].items():
            precisions[p] = precisions.get(p, 0) + n
    session.precision_ran = "int8" if precisions.get("int8") else "fp32"
    session.runtime_info = {
        "delegate": "XNNPACK" if delegate == "xnnpack" else "none (reference kernels)",
        "num_threads": settings.threads or "default",
        "ops": sorted({op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"}),
        "delegated_share": 1.0 - summary["fallback_share"] if delegate == "xnnpack" else 0.0,
        "placement": summary,
    }
    return session
