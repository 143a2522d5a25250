"""`bench sweep`: a matrix of cells from a YAML file, all prepared first, then measured back to back,
each stored at once; resumable (`--resume`), locally or on a Ray farm (`--farm`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from effbench.commands.launch import early_fork_server, local_workers, say_once
from effbench.commands.options import DbOption, OutOption, TagOption
from effbench.console import console, result_table
from effbench.harness.sink import ResultSink, check_out_writable


def sweep_command(
    file: Path = typer.Argument(
        ..., help="Sweep YAML: lists models, backends (and batches, precisions, scenarios, devices) plus run options."
    ),
    db: DbOption = None,
    resume: bool = typer.Option(
        False, "--resume", help="Skip cells already stored with the same configuration and tag."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume, run stored failed cells again."),
    tag: TagOption = None,
    out: OutOption = None,
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    farm: Optional[str] = typer.Option(
        None,
        "--farm",
        envvar="RAY_ADDRESS",
        help="Run the cells on a device farm: HOST:PORT of its head, or ray://HOST:10001.",
    ),
) -> None:
    """Run a matrix of cells: all prepared first, then measured back to back; each finished cell is stored
    at once, failures are recorded and the sweep goes on."""
    server = None if farm else early_fork_server(isolate)
    try:
        _sweep(file, db, resume, retry_failed, tag, out, isolate, farm, server)
    finally:
        if server is not None:
            server.close()


def _sweep(
    file: Path,
    db: str | None,
    resume: bool,
    retry_failed: bool,
    tag: str | None,
    out: Path | None,
    isolate: bool,
    farm: str | None,
    server: Any,
) -> None:
    from effbench.harness.scheduler import run_cells
    from effbench.harness.store import Store
    from effbench.harness.sweep import load_sweep
    from effbench.harness.urls import redact

    cells = load_sweep(file, {"tag": tag} if tag else None)
    check_out_writable(out)
    store = Store(db)
    skipped = 0
    if resume:
        done = store.done_cells(retry_failed)
        before = len(cells)
        cells = [c for c in cells if (c.config_hash(), c.tag) not in done]
        skipped = before - len(cells)
    console.print(
        f"sweep {file}: {len(cells)} cell(s) to run"
        + (f", {skipped} already stored" if skipped else "")
        + (f" on the farm at {farm}" if farm else ""),
        highlight=False,
    )
    sink = ResultSink(out, store, f"sweep {file.name}")
    resume_cmd = _resume_command(file, redact(db) if db else None, farm, tag)
    launchers = {} if farm else local_workers(isolate, [c.backend for c in cells], server)
    try:
        if farm:
            from effbench.farm.submit import FarmInterrupted, run_on_farm

            try:
                run_on_farm(cells, farm, on_result=sink)
            except FarmInterrupted:
                raise KeyboardInterrupt from None
        else:
            run_cells(cells, isolate=isolate, on_result=sink, launchers=launchers)
    except KeyboardInterrupt:
        sink.summary()
        console.print(
            f"\n[yellow]interrupted:[/] {len(sink.records)} cell(s) finished and stored; resume with: {resume_cmd}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    finally:
        for launcher in launchers.values():
            launcher.close()
    console.print(result_table(sink.records, title=f"sweep {file.name}"))
    say_once(sink.records)
    failed = sum(r["status"] not in ("ok", "lost") for r in sink.records)
    lost = sum(r["status"] == "lost" for r in sink.records)
    summary = (
        f"{len(sink.records) - failed - lost} ok, {failed} failed/crashed/skipped, {skipped} resumed from the store"
    )
    console.print(
        summary + (f", {lost} lost by the farm: run them again with: {resume_cmd}" if lost else ""),
        highlight=False,
        soft_wrap=True,
    )
    if sink.summary():
        raise typer.Exit(1)


def _resume_command(file: Path, db: str | None, farm: str | None, tag: str | None) -> str:
    """The command that picks the sweep up again (the database URL with its password hidden)."""
    import shlex

    args = [
        "bench",
        "sweep",
        str(file),
        "--resume",
        *(["--db", db] if db else []),
        *(["--farm", farm] if farm else []),
        *(["--tag", tag] if tag else []),
    ]
    return shlex.join(args)
