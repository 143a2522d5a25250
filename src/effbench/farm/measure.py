"""The farm node's side of a cell: the payload of a PreparedCell (made on the submitting side),
its shipped artifact and input batch placed in this node's content-addressed folder, measured by the
same launchers as everywhere else — a fresh worker process here, or the ssh agent of a board this
node reaches (a proxy host) — and handed back unassembled: the submitting side assembles it with
the parity reference and graph analysis it holds.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

_WORKERS: list = []  # one fork server per Ray worker process, kept across its tasks


def node_identity() -> dict[str, Any]:
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "host": socket.gethostname(),
        "worker_pid": os.getpid(),
    }


def _forward_progress(board: Any, key: str, every_s: float = 0.25) -> Callable[[dict[str, Any]], None]:
    """Progress events to the sweep's board: each new phase, and otherwise a few per second."""
    last: dict[str, Any] = {"phase": None, "at": 0.0}

    def on_event(msg: dict[str, Any]) -> None:
        now = time.monotonic()
        if board is None or (msg.get("phase") == last["phase"] and now - last["at"] < every_s):
            return
        last.update(phase=msg.get("phase"), at=now)
        board.progress.remote(key, {k: msg.get(k) for k in ("phase", "fraction", "detail")})

    return on_event


def _local_workers() -> Any:
    from effbench.harness.launchers.local import Workers

    if not _WORKERS:
        _WORKERS.append(Workers(("numpy", "onnxruntime", "openvino")))
    return _WORKERS[0]


def measure_on_node(
    payload: dict[str, Any],
    artifact: dict[str, Any] | None,
    inputs: dict[str, Any] | None,
    board: Any,
    key: str,
    device: str,
    timeout: float,
) -> dict[str, Any]:
    """(answer, outcome, wall time, how it was reached) of one cell measured on this node."""
    from effbench import __version__
    from effbench.farm.artifacts import materialize
    from effbench.harness.failures import classify

    node = node_identity()
    started = time.time()
    if board is not None:
        board.started.remote(key, node, started)
    payload = dict(payload)
    shipped: dict[str, Any] = {}
    answer = outcome = remote = None
    wall = 0.0
    try:
        if artifact is not None:
            path, shipped["artifact"] = materialize(artifact)
            payload["artifact"] = {**payload["artifact"], "path": str(path)}
        if inputs is not None:
            path, shipped["inputs"] = materialize(inputs)
            payload["inputs_path"] = str(path)
        from effbench.devices.target import resolve_target
        from effbench.harness.launchers.local import fork_ok

        target = resolve_target(device)  # in this node's own catalog (bench farm join --devices-file)
        if target.execution == "remote":
            from effbench.harness.launchers.ssh import Ssh

            answer, outcome, wall, remote = Ssh(target.spec).measure(payload, timeout, _forward_progress(board, key))
        else:
            answer, outcome, wall = _local_workers().measure(
                payload, timeout, fork_ok(target.execution), _forward_progress(board, key)
            )
    except Exception as e:
        outcome = classify(e)
    farm = {
        **node,
        "started_unix": started,
        "finished_unix": time.time(),
        "artifact": shipped.get("artifact"),
        "effbench": __version__,
    }
    return {"answer": answer, "outcome": outcome, "wall_s": wall, "remote": remote, "farm": farm}
