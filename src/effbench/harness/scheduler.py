"""Run a list of cells one after another (isolated by default), committing each result at once,
with a progress display of cells done / failed / left."""

from __future__ import annotations

import time
from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from effbench.console import err_console
from effbench.harness.config import RunConfig
from effbench.harness.result import Result, failed_result
from effbench.harness.store import Store


def _run_one(cfg: RunConfig, isolate: bool, on_event: Callable[[dict], None]) -> Result:
    if isolate:
        from effbench.harness.worker import run_isolated

        return run_isolated(cfg, on_event)
    from effbench.errors import EffbenchError
    from effbench.harness.runner import run_cell

    try:
        return run_cell(cfg, lambda p, f, d: on_event({"phase": p, "fraction": f, "detail": d}))
    except EffbenchError as e:
        return failed_result(cfg.to_dict(), "failed", str(e), config_hash=cfg.config_hash())


def run_cells(cells: list[RunConfig], store: Store | None, isolate: bool = True,
              on_result: Callable[[Result], None] | None = None, show_progress: bool = True) -> list[Result]:
    """Run the cells; KeyboardInterrupt propagates after the finished results are stored."""
    results: list[Result] = []
    failed = 0
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, transient=True, disable=not show_progress,
    ) as progress:
        overall = progress.add_task("cells", total=len(cells), status="")
        cell_task = progress.add_task("", total=1.0, status="")
        for cfg in cells:
            progress.update(cell_task, description=cfg.label(), completed=0, status="starting")

            def on_event(msg: dict, _t=cell_task) -> None:
                phase = msg.get("phase", "")
                progress.update(_t, completed=msg.get("fraction", 0.0),
                                status=f"{phase} {msg.get('detail', '')}".strip())

            t0 = time.perf_counter()
            result = _run_one(cfg, isolate, on_event)
            result.extra.setdefault("cell_wall_s", round(time.perf_counter() - t0, 2))
            if store is not None:
                store.add(result)
            results.append(result)
            if result.status != "ok":
                failed += 1
            if on_result:
                on_result(result)
            progress.update(overall, advance=1,
                            status=f"{len(results) - failed} ok, {failed} failed, {len(cells) - len(results)} left")
    return results
