"""The one adapter between a farm node and the harness: measure one cell here, return its record.

The cell's Ray task calls `measure_cell` on the node that advertises the cell's device. Everything
else in `effbench.farm` deals in plain records (`Result.to_dict()`), so re-pointing the farm at
another launcher means changing this function's body only. What it needs from the harness today:

- `RunConfig(**cell)`: the cell as the submitting side built it;
- `effbench.harness.scheduler._run_one(cfg, isolate=True, on_event)`: the harness's dispatch (a
  worker process per cell; the ssh agent for a device this node reaches over ssh), which always
  returns a `Result` and calls `on_event({"phase", "fraction", "detail"})` as the cell goes;
- the device named in this node's own catalog (EFFBENCH_DEVICES, set by `bench farm join
  --devices-file`): the submitting side's devices file means nothing here.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

SHIPPED_PARITY_NOTE = (
    "parity on the farm compares the shipped ONNX file with itself through ONNX Runtime, not with the PyTorch reference"
)


def node_identity() -> dict[str, Any]:
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "host": socket.gethostname(),
        "worker_pid": os.getpid(),
    }


def _forward_progress(board, key: str, every_s: float = 0.25):
    """Progress events to the sweep's board: each new phase, and otherwise a few per second."""
    last = {"phase": None, "at": 0.0}

    def on_event(msg: dict[str, Any]) -> None:
        now = time.monotonic()
        if board is None or (msg.get("phase") == last["phase"] and now - last["at"] < every_s):
            return
        last.update(phase=msg.get("phase"), at=now)
        board.progress.remote(key, {k: msg.get(k) for k in ("phase", "fraction", "detail")})

    return on_event


def measure_cell(cell: dict[str, Any], shipped: dict[str, Any] | None, board, key: str) -> dict[str, Any]:
    from effbench import __version__
    from effbench.errors import EffbenchError
    from effbench.farm.artifacts import materialize
    from effbench.harness.config import RunConfig
    from effbench.harness.result import failed_result
    from effbench.harness.scheduler import _run_one

    node = node_identity()
    started = time.time()
    if board is not None:
        board.started.remote(key, node, started)
    cfg = RunConfig(**cell)
    run_cfg = cfg.model_copy(update={"devices_file": None})
    artifact = None
    try:
        if shipped is not None:
            path, artifact = materialize(shipped)
            run_cfg = run_cfg.model_copy(update={"model": str(path)})
        result = _run_one(run_cfg, True, _forward_progress(board, key))
    except EffbenchError as e:
        result = failed_result(cfg.to_dict(), "failed", str(e))
    record = result.to_dict()
    # the record describes the cell as submitted, wherever its artifact lay on this node
    record.update(config=cfg.to_dict(), config_hash=cfg.config_hash())
    if shipped is not None:
        record["model"] = shipped["model_id"]
        if record.get("parity"):
            record["warnings"].append(SHIPPED_PARITY_NOTE)
    record["extra"]["farm"] = {
        **node,
        "started_unix": started,
        "finished_unix": time.time(),
        "artifact": artifact,
        "effbench": __version__,
    }
    return record
