"""Run cells with a progress display, committing each result as soon as it is finished.

Cells are grouped into lanes, one per device: lanes run concurrently, the cells of a lane one after
another, so a device is never shared by two measurements. All local cells (CPU and local GPUs) share
one lane: a GPU cell still drives the host CPU, and a concurrent CPU cell would disturb it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from effbench.console import err_console
from effbench.errors import EffbenchError
from effbench.harness.config import RunConfig
from effbench.harness.result import Result, failed_result
from effbench.harness.store import Store

LOCAL_LANE = "local"


def lane_of(cfg: RunConfig) -> str:
    from effbench.devices.target import resolve_target

    try:
        target = resolve_target(cfg.device, cfg.devices_file)
    except EffbenchError:
        return LOCAL_LANE  # the cell fails with its own message when it runs
    return cfg.device if target.execution == "remote" else LOCAL_LANE


def _run_one(cfg: RunConfig, isolate: bool, on_event: Callable[[dict], None]) -> Result:
    try:
        from effbench.devices.target import resolve_target

        target = resolve_target(cfg.device, cfg.devices_file)
        if target.execution == "remote":
            from effbench.devices.remote import run_remote

            return run_remote(cfg, target.spec, on_event)
        if isolate:
            from effbench.harness.worker import run_isolated

            return run_isolated(cfg, on_event)
        from effbench.harness.runner import run_cell

        return run_cell(cfg, lambda p, f, d: on_event({"phase": p, "fraction": f, "detail": d}))
    except EffbenchError as e:
        status = "skipped" if e.exit_code == 2 else "failed"
        return failed_result(cfg.to_dict(), status, str(e), config_hash=cfg.config_hash())


def run_cells(cells: list[RunConfig], store: Store | None, isolate: bool = True,
              on_result: Callable[[Result], None] | None = None, show_progress: bool | None = None) -> list[Result]:
    """Run the cells (results in the order given); KeyboardInterrupt propagates after the
    finished results are stored."""
    lanes: dict[str, list[tuple[int, RunConfig]]] = {}
    for i, cfg in enumerate(cells):
        lanes.setdefault(lane_of(cfg), []).append((i, cfg))
    results: dict[int, Result] = {}
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()
    if show_progress is None:
        show_progress = err_console.is_terminal

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, transient=True, disable=not show_progress,
    ) as progress:
        overall = progress.add_task("cells", total=len(cells), status="")

        def run_lane(name: str, items: list[tuple[int, RunConfig]]) -> None:
            task = progress.add_task(f"[{name}]", total=1.0, status="")
            for i, cfg in items:
                if stop.is_set():
                    return
                progress.update(task, description=f"[{name}] {cfg.label()}", completed=0, status="starting")

                def on_event(msg: dict, _t=task) -> None:
                    progress.update(_t, completed=msg.get("fraction", 0.0),
                                    status=f"{msg.get('phase', '')} {msg.get('detail', '')}".strip())

                t0 = time.perf_counter()
                result = _run_one(cfg, isolate, on_event)
                result.extra.setdefault("cell_wall_s", round(time.perf_counter() - t0, 2))
                if store is not None:
                    store.add(result)
                with lock:
                    results[i] = result
                    counts["ok" if result.status == "ok" else "failed"] += 1
                    if on_result:
                        on_result(result)
                    progress.update(overall, advance=1, status=(
                        f"{counts['ok']} ok, {counts['failed']} failed, {len(cells) - len(results)} left"))

        if len(lanes) == 1:
            (name, items), = lanes.items()
            run_lane(name, items)
        else:
            threads = [threading.Thread(target=run_lane, args=item, daemon=True) for item in lanes.items()]
            for t in threads:
                t.start()
            try:
                for t in threads:
                    while t.is_alive():
                        t.join(timeout=0.2)
            except KeyboardInterrupt:
                stop.set()  # lanes finish (and store) the cell in hand, then stop
                raise
    return [results[i] for i in sorted(results)]
