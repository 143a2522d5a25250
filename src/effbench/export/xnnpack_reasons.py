"""Why XNNPACK's partitioner left a node out, as it says it: its configs log a WhyNoPartition
("Node aten_mean_dim was not partitioned because ...") at DEBUG on their loggers, which are captured
while the program is lowered. A node whose op no config takes gets that said instead."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

LOGGERS = "executorch.backends.xnnpack.partition"
INT8_PAD = "kept out of XNNPACK for int8: XNNPACK refuses an int8 constant pad when the method loads"


class _Why(logging.Handler):
    def __init__(self, reasons: dict[str, str]):
        super().__init__(logging.DEBUG)
        self.reasons = reasons

    def emit(self, record: logging.LogRecord) -> None:
        why = record.msg  # the partitioner's one WhyNoPartition object, refilled before each call: read it now
        node, reason = getattr(why, "node", None), getattr(why, "reason", None)
        if node is not None and reason:
            self.reasons.setdefault(str(node.name), str(reason))


@contextlib.contextmanager
def partitioner_reasons() -> Iterator[dict[str, str]]:
    """node name -> the first reason XNNPACK's partitioner gave for not taking it, while lowering."""
    reasons: dict[str, str] = {}
    logger = logging.getLogger(LOGGERS)
    handler, level, propagate = _Why(reasons), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def fallback_reasons(graph_module: Any, rows: list[list[Any]], said: dict[str, str], configs: list[Any], int8: bool):
    """Per node of the lowered graph that ran outside XNNPACK: the partitioner's own reason, else why
    no config took it (an op it has no config for, the int8 pad effbench keeps out)."""
    from executorch.exir.backend.canonical_partitioners.config_partitioner import format_target_name

    targets = {
        n.name: format_target_name(getattr(n.target, "__name__", str(n.target)))
        for n in graph_module.graph.nodes
        if n.op == "call_function"
    }
    taken = {c.target_name for c in configs}
    out: dict[str, str] = {}
    for name, op, unit, *_ in rows:
        if unit == "XNNPACK":
            continue
        if name in said:
            out[name] = "XNNPACK partitioner: " + said[name]
        elif int8 and op == "constant_pad_nd":
            out[name] = INT8_PAD
        elif name in targets and targets[name] not in taken:
            out[name] = f"XNNPACK partitioner has no config for {targets[name]}"
    return out
