"""A sweep on the farm: every cell a Ray task that holds its device's resource, every result
committed to the store here, one at a time, as it comes back.

Ray guarantees the exclusivity: each device is a custom resource of capacity 1, so two cells of one
device never measure at once while cells of different devices run side by side. A cell whose node
dies (or whose device leaves the farm while it waits) is recorded `lost` with the node and the
reason; the sweep goes on and `--resume` runs it again. Ctrl-C cancels what has not finished, keeps
what has, and raises FarmInterrupted for the caller to print the resume command.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from effbench.errors import UsageError
from effbench.farm import cluster
from effbench.farm.resources import resource_name
from effbench.harness import failures
from effbench.harness.config import RunConfig
from effbench.harness.prepare import PreparedCell
from effbench.harness.result import Result

TICK_S = 0.25
DEVICE_CHECK_S = 1.0


class FarmInterrupted(Exception):
    def __init__(self, finished: int):
        super().__init__(f"interrupted after {finished} finished cell(s)")
        self.finished = finished


@dataclass
class _Cell:
    key: str
    cfg: RunConfig
    prepared: PreparedCell | None = None
    ref: Any = None
    submitted_unix: float = 0.0
    node: dict[str, Any] | None = None  # from the board, once started
    announced: bool = False
    done: bool = False


def run_on_farm(
    cells: list[RunConfig],
    address: str,
    on_result: Callable[[Result], None] | None = None,
    show_progress: bool | None = None,
) -> list[Result]:
    """Prepare every cell here (exports, references, analyses), then measure each on the node that
    owns its device; `on_result` gets each Result as it comes back (the caller stores it)."""
    for cfg in cells:
        if cfg.eval or cfg.precision == "int8":
            raise UsageError("--eval and int8 cells run on this machine or its ssh devices for now, not on the farm")
    cluster.connect(address)
    try:
        return _FarmSweep(cells, on_result, show_progress).run()
    finally:
        cluster.disconnect()


def check_devices(devices: set[str]) -> None:
    """Every device of the sweep is advertised by exactly one node: a device two nodes claim could
    be given two measurements at once."""
    for d in devices:
        resource_name(d)
    advertised = cluster.advertised_devices()
    missing = sorted(devices - set(advertised))
    if missing:
        have = ", ".join(sorted(advertised)) or "none"
        raise UsageError(
            f"no farm node advertises device {', '.join(missing)} (advertised: {have}); "
            f"start one with `bench farm join HEAD --device {missing[0]}`"
        )
    doubled = sorted(d for d in devices if advertised[d] != 1)
    if doubled:
        raise UsageError(
            f"device {doubled[0]} is advertised by {advertised[doubled[0]]:g} nodes: "
            "stop all but the one that owns it (`bench farm status` shows them)"
        )


_NODE_IN_MESSAGE = re.compile(r"Node IP: ([0-9a-fA-F.:]+), node ID: ([0-9a-f]+)")


class _FarmSweep:
    def __init__(
        self, cells: list[RunConfig], on_result: Callable[[Result], None] | None, show_progress: bool | None
    ) -> None:
        self.cells = [_Cell(str(i), cfg) for i, cfg in enumerate(cells)]
        self.on_result, self.show_progress = on_result, show_progress
        self.sweep_id = uuid.uuid4().hex[:12]
        self.results: dict[str, Result] = {}
        self.pending: dict[Any, _Cell] = {}
        self.interrupted = False
        self.snapshot_ref = None
        self.last_device_check = 0.0

    # --- the sweep ---------------------------------------------------------------------------

    def run(self) -> list[Result]:
        import ray

        from effbench.farm.artifacts import Shipper
        from effbench.farm.board import open_board
        from effbench.farm.lanes import Lanes
        from effbench.farm.measure import measure_on_node

        devices = sorted({c.cfg.device for c in self.cells})
        check_devices(set(devices))
        counts = {d: sum(c.cfg.device == d for c in self.cells) for d in devices}
        self.lanes = Lanes(devices, counts, self.show_progress)
        self.board = open_board(
            self.sweep_id,
            {"sweep_id": self.sweep_id, "cells": len(self.cells), "submitted_unix": time.time()},
            {c.key: {"device": c.cfg.device, "label": c.cfg.label()} for c in self.cells},
        )
        from effbench.harness.scheduler import prepare_cells

        task = ray.remote(max_retries=0, num_cpus=0)(measure_on_node)
        shipper = Shipper()
        restore = self._catch_ctrl_c()
        try:
            # exported once, here, before any cell is measured anywhere
            prepared = prepare_cells([c.cfg for c in self.cells])
            for cell, item in zip(self.cells, prepared):
                if self.interrupted:
                    break
                if isinstance(item, Result):  # the export failed: recorded, the sweep goes on
                    self._finish(cell, item)
                    continue
                cell.prepared = item
                artifact = shipper.ship(Path(item.artifact.path)) if item.artifact.path else None
                inputs = shipper.ship(Path(item.inputs_path), whole_folder=False)
                cell.submitted_unix = time.time()
                cell.ref = task.options(
                    resources={resource_name(cell.cfg.device): 1},
                    name=f"effbench {cell.cfg.device}: {cell.cfg.label()}",
                ).remote(item.payload(), artifact, inputs, self.board, cell.key, cell.cfg.device, cell.cfg.timeout_s)
                self.pending[cell.ref] = cell
                self._tick(0)
            while self.pending and not self.interrupted:
                self._tick(TICK_S)
            if self.interrupted:
                self._tick(0)  # what finished meanwhile is kept
                for ref in list(self.pending):
                    self._cancel(ref)
                raise FarmInterrupted(len(self.results))
        except KeyboardInterrupt:  # no handler of ours (not the main thread), or a second Ctrl-C
            for ref in list(self.pending):
                self._cancel(ref)
            raise FarmInterrupted(len(self.results)) from None
        finally:
            restore()
            self.lanes.close()
        return [self.results[c.key] for c in self.cells if c.key in self.results]

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """The first Ctrl-C sets a flag the loop acts on between results (never in the middle of a
        commit); a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: Any) -> None:
            self.interrupted = True
            signal.signal(signal.SIGINT, signal.default_int_handler)

        signal.signal(signal.SIGINT, on_sigint)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore

    # --- one turn of the loop --------------------------------------------------------------------

    def _tick(self, timeout: float) -> None:
        import ray

        if self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
            for ref in ready:
                self._collect(ref)
        self._read_board()
        now = time.monotonic()
        if now - self.last_device_check >= DEVICE_CHECK_S:
            self.last_device_check = now
            self._lose_orphans()

    def _collect(self, ref: Any) -> None:
        import ray
        from ray import exceptions as rex

        from effbench.harness.launchers.local import outcome_to_result

        cell = self.pending.pop(ref)
        assert cell.prepared is not None
        try:
            got = ray.get(ref)
            remote = {"remote": True, "transport": "ray", **got["farm"], **(got["remote"] or {})}
            result = outcome_to_result(cell.prepared, got["answer"], got["outcome"], got["wall_s"], remote)
            result = result.with_extra(farm=got["farm"])
        except rex.TaskCancelledError:
            return  # only ever after Ctrl-C: not a result
        except rex.RayTaskError as e:  # the task's own Python failed on the node (say, no effbench there)
            cause = getattr(e, "cause", None) or e
            text = f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:500]
            result = self._failed(cell, {"status": "failed", "error": f"on the farm node: {text}", "extra": {}})
        except rex.RayError as e:  # the node, its raylet or the worker died: the farm lost the cell
            result = self._lost(cell, self._lost_reason(cell, e))
        self._finish(cell, result)

    @staticmethod
    def _failed(cell: _Cell, outcome: dict[str, Any]) -> Result:
        model = cell.prepared.model_id if cell.prepared else None
        backend = cell.prepared.backend if cell.prepared else None
        return failures.failed_result(
            cell.cfg.to_dict(), outcome, model=model, backend=backend, config_hash=cell.cfg.config_hash()
        )

    def _lost(self, cell: _Cell, reason: str, node: dict | None = None) -> Result:
        node = node or cell.node or {}
        outcome = failures.lost(str(node.get("node_ip", "?")), reason)
        outcome["extra"] = {"farm": {**node, "reason": reason}}
        return self._failed(cell, outcome)

    def _lost_reason(self, cell: _Cell, e: Exception) -> str:
        text = str(e).strip()
        if cell.node is None:
            m = _NODE_IN_MESSAGE.search(text)
            if m:
                cell.node = {"node_ip": m.group(1), "node_id": m.group(2)}
        first = text.splitlines()[0][:300] if text else ""
        where = f"node {cell.node.get('node_ip')} ({cell.node.get('node_id', '')[:12]})" if cell.node else "its node"
        return f"{where} failed while measuring it ({type(e).__name__}: {first})"

    def _lose_orphans(self) -> None:
        """Cells of a device that no live node advertises any more would wait forever: lost."""
        waiting = {c.cfg.device for c in self.pending.values()}
        if not waiting:
            return
        gone = waiting - set(cluster.advertised_devices())
        for ref, cell in list(self.pending.items()):
            if cell.cfg.device not in gone:
                continue
            self.pending.pop(ref)
            self._cancel(ref)
            if cell.node:
                reason = (
                    f"node {cell.node.get('node_ip')} ({cell.node.get('node_id', '')[:12]}) left the farm "
                    f"while measuring it"
                )
            else:
                reason = f"queued for {cell.cfg.device}, whose node left the farm"
            self._finish(cell, self._lost(cell, reason))

    def _read_board(self) -> None:
        import ray

        if self.snapshot_ref is None:
            self.snapshot_ref = self.board.snapshot.remote()
            return
        ready, _ = ray.wait([self.snapshot_ref], timeout=0)
        if not ready:
            return
        try:
            snap = ray.get(self.snapshot_ref)
        except ray.exceptions.RayError:
            snap = None
        self.snapshot_ref = self.board.snapshot.remote()
        for cell in self.cells:
            entry = (snap or {}).get("cells", {}).get(cell.key) if snap else None
            if not entry or cell.done or entry["state"] != "running":
                continue
            cell.node = entry.get("node")
            if not cell.announced:
                cell.announced = True
                self.lanes.started(cell.cfg.device, cell.cfg.label(), cell.node or {})
            if entry.get("phase"):
                self.lanes.update(
                    cell.cfg.device, entry.get("fraction", 0.0), f"{entry['phase']} {entry.get('detail', '')}".strip()
                )

    def _finish(self, cell: _Cell, result: Result) -> None:
        cell.done = True
        farm = {
            **result.extra.get("farm", {}),
            "sweep_id": self.sweep_id,
            "submitted_unix": cell.submitted_unix or None,
        }
        result = result.with_extra(farm=farm)
        self.results[cell.key] = result
        self.board.finished.remote(cell.key, result.status)
        if not cell.announced and result.status != "lost" and farm.get("node_ip"):
            self.lanes.started(cell.cfg.device, cell.cfg.label(), farm)
        note = (result.error or "") if result.status != "ok" else ""
        self.lanes.finished(cell.cfg.device, cell.cfg.label(), result.status, note)
        if self.on_result:
            self.on_result(result)

    @staticmethod
    def _cancel(ref: Any) -> None:
        import ray

        try:
            ray.cancel(ref, force=False)
        except Exception:  # already finished, or its node is gone
            pass
