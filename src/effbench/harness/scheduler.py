"""Run cells: prepare them all first, then measure them back to back, handing each result on as
soon as it is finished (the caller's ResultSink stores it: harness/sink.py).

Prepare: every cell is checked and prepared from the cache in this process; cells whose artifacts,
references or analyses must be built are built in processes of their own (prepare_pool: a crash
there is the cell's record), in parallel where the machine allows (one process per model, so a
model's ONNX export happens once), before any measuring starts: no measuring window ever shares the
CPU with an export.

Measure: cells are grouped into lanes, one per device; lanes run concurrently, the cells of a lane
one after another, so a device is never shared by two measurements. All local cells (CPU and local
GPUs) share one lane: a GPU cell still drives the host CPU.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import defaultdict
from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from effbench.console import err_console
from effbench.errors import EffbenchError, UsageError
from effbench.export.cache import NotCached, cached_only
from effbench.harness import failures
from effbench.harness.config import RunConfig
from effbench.harness.prepare import Checked, PreparedCell, check_cell, prepare
from effbench.harness.prepare_pool import BUILT, build_in_processes, usage_error
from effbench.harness.result import Result

LOCAL_LANE = "local"
MAX_PREPARE_WORKERS = 4


def preload_for(cells: list[RunConfig]) -> tuple[str, ...]:
    """The modules the backends of these cells want imported once by the fork server."""
    from effbench.backends.registry import get_backend

    return tuple(
        dict.fromkeys(m for name in dict.fromkeys(c.backend for c in cells) for m in get_backend(name).preload)
    )


def lane_of(cell: PreparedCell) -> str:
    return cell.cfg.device if cell.target is not None and cell.target.execution == "remote" else LOCAL_LANE


def _model_group(cfg: RunConfig) -> tuple:
    return (cfg.model, cfg.input_size, cfg.batch_size, cfg.seed, cfg.weights, cfg.pretrained)


def prepare_cells(
    cells: list[RunConfig], progress=None, checked: list[Checked] | None = None, isolate: bool = True
) -> list[PreparedCell | Result]:
    """A PreparedCell per cell, or the failed Result of a cell that could not be prepared. Cells
    whose artifacts are cached are prepared here (nothing built, no torch imported); the others are
    built in processes of their own (prepare_pool), or here when `isolate` is off (--in-process).
    `checked`: the cells already checked by a caller that refuses bad input up front; a build that
    finds bad input then raises its UsageError too."""
    out: list[PreparedCell | Result | None] = [None] * len(cells)
    ok: dict[int, Checked] = {}
    missing: dict[tuple, list[int]] = defaultdict(list)
    for i, cfg in enumerate(cells):
        try:
            ok[i] = checked[i] if checked is not None else check_cell(cfg)
            if isolate:
                with cached_only():
                    out[i] = prepare(ok[i])
            else:
                out[i] = prepare(ok[i])
        except NotCached:
            missing[_model_group(cfg)].append(i)
        except Exception as e:
            if checked is not None and isinstance(e, UsageError):
                raise
            out[i] = _failed(cfg, failures.classify(e))
        if progress:
            progress(i)
    if missing:
        built = build_in_processes(cells, list(missing.values()), _prepare_workers(len(missing)))
        for i, outcome in sorted(built.items()):
            if checked is not None and (bad := usage_error(outcome)):
                raise bad
            built = outcome["status"] == BUILT
            out[i] = _from_cache(cells[i], ok[i], outcome["built"]) if built else _failed(cells[i], outcome)
    return [o for o in out if o is not None]


def _failed(cfg: RunConfig, outcome: dict) -> Result:
    outcome = {k: v for k, v in outcome.items() if k in ("status", "error", "extra")}
    return failures.failed_result(cfg.to_dict(), outcome, config_hash=cfg.config_hash())


def _from_cache(cfg: RunConfig, checked: Checked, built: dict) -> PreparedCell | Result:
    """A cell its build process built: everything is in the cache now; the record keeps what the
    build did (a fresh export and its time), not that the harness then found it cached."""
    try:
        with cached_only():
            return dataclasses.replace(prepare(checked), **built)
    except NotCached as e:
        return _failed(
            cfg,
            {
                "status": "failed",
                "error": f"built, but not found in the artifact cache afterwards ({e}): is EFFBENCH_CACHE "
                "changing while the run prepares?",
                "extra": {},
            },
        )
    except Exception as e:
        return _failed(cfg, failures.classify(e))


def _prepare_workers(groups: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(groups, MAX_PREPARE_WORKERS, cpus))


def _launcher(lane: str, cell: PreparedCell, isolate: bool, pool: dict):
    from effbench.harness.launchers.local import InProcess, Workers
    from effbench.harness.launchers.ssh import Ssh

    if lane not in pool:
        if lane != LOCAL_LANE:
            pool[lane] = Ssh(cell.target.spec)
        else:
            pool[lane] = Workers() if isolate else InProcess()
    return pool[lane]


def run_cells(
    cells: list[RunConfig],
    *,
    isolate: bool = True,
    on_result: Callable[[Result], None] | None = None,
    show_progress: bool | None = None,
    launchers: dict | None = None,
    prepared: list[PreparedCell | Result] | None = None,
) -> list[Result]:
    """Run the cells (results in the order given). Each finished result goes to `on_result` at once,
    one at a time: a command passes its ResultSink (harness/sink.py), the one way results are stored,
    so a KeyboardInterrupt propagates only after the finished results are stored. `prepared`: the
    cells already prepared by the caller (one item per cell), so that nothing is prepared twice."""
    pool: dict = launchers if launchers is not None else {}
    if isolate and LOCAL_LANE not in pool:
        from effbench.harness.launchers.local import Workers

        pool[LOCAL_LANE] = Workers(preload_for(cells))
        pool[LOCAL_LANE].start_server()  # its imports overlap the preparation
    results: dict[int, Result] = {}
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()
    if show_progress is None:
        show_progress = err_console.is_terminal

    def finish(i: int, result: Result) -> None:
        with lock:
            results[i] = result
            counts["ok" if result.ok else "failed"] += 1
            if on_result:
                on_result(result)

    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not show_progress,
        ) as progress:
            if prepared is None:
                prep_task = progress.add_task("prepare", total=len(cells), status="")
                prepared = prepare_cells(cells, lambda i: progress.update(prep_task, completed=i + 1), isolate=isolate)
                progress.remove_task(prep_task)
            lanes: dict[str, list[tuple[int, PreparedCell]]] = defaultdict(list)
            for i, item in enumerate(prepared):
                if isinstance(item, Result):
                    finish(i, item)
                else:
                    lanes[lane_of(item)].append((i, item))
            overall = progress.add_task("cells", total=len(cells), status="", completed=len(results))

            def run_lane(name: str, items: list[tuple[int, PreparedCell]]) -> None:
                task = progress.add_task(f"[{name}]", total=1.0, status="")
                for i, cell in items:
                    if stop.is_set():
                        return
                    progress.update(task, description=f"[{name}] {cell.cfg.label()}", completed=0, status="starting")

                    def on_event(msg: dict, _t=task) -> None:
                        progress.update(
                            _t,
                            completed=msg.get("fraction", 0.0),
                            status=f"{msg.get('phase', '')} {msg.get('detail', '')}".strip(),
                        )

                    try:
                        result = _launcher(name, cell, isolate, pool).run(cell, on_event)
                    except EffbenchError as e:
                        result = failures.failed_result(
                            cell.cfg.to_dict(),
                            failures.classify(e),
                            model=cell.model_id,
                            backend=cell.backend,
                            config_hash=cell.cfg.config_hash(),
                        )
                    finish(i, result)
                    progress.update(
                        overall,
                        advance=1,
                        status=(f"{counts['ok']} ok, {counts['failed']} failed, {len(cells) - len(results)} left"),
                    )

            if len(lanes) <= 1:
                for name, items in lanes.items():
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
    finally:
        if launchers is None:
            for launcher in pool.values():
                launcher.close()
    return [results[i] for i in sorted(results)]
