"""`bench devices show|tune|reset|stability`: what on this device moves numbers and tuning it
(pyperf-style), and a device's stability score over its stored results. The rest of `bench
devices` (list, detect, calibrate, check) lives in effbench.devices.commands; this module adds
these commands to that group, since they read the results store (a layer above devices)."""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich import box
from rich.table import Table

from effbench.console import console, one_line_errors
from effbench.core import tuning
from effbench.devices.commands import app
from effbench.errors import UsageError
from effbench.harness.stability_score import MIN_RUNS, device_stability
from effbench.harness.store import Store

__all__ = ["app"]


def _need_root(command: str) -> None:
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise UsageError(
            f"`bench devices {command}` changes system settings and needs root: run `sudo bench devices {command}`"
        )


def _changes(values: dict[str, str], said: str, errors: list[str], verb: str) -> int:
    for path, value in values.items():
        console.print(f"{path}: {said} {value}")
    for e in errors:
        console.print(f"[yellow]could not {verb} {e}[/]")
    return 1 if errors else 0


@app.command("show")
@one_line_errors
def show_command() -> None:
    """What is set on this device that moves benchmark numbers, and what to change."""
    table = Table(title="This device's settings that move numbers", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("setting", "now", "advice"):
        table.add_column(col)
    for row in tuning.show():
        values = row["values"]
        now = ", ".join(sorted(set(v for v in values.values() if v))) if values else "not on this device"
        advice = row["advice"] or ("ok" if row["present"] else "-")
        table.add_row(row["name"], now, advice)
    console.print(table)
    state = tuning.tuned_summary()
    if state["tuned"]:
        console.print(f"tuned by `bench devices tune` at {state['at']} ({state['settings']} setting(s) changed)")
    elif any(r["advice"] for r in tuning.show() if r["name"] != "other load"):
        console.print("`sudo bench devices tune` sets what it can; `bench devices reset` restores it")


@app.command("tune")
@one_line_errors
def tune_command() -> int:
    """Set this device up for benchmarking (root): governor performance, turbo off, clocks pinned."""
    _need_root("tune")
    done = tuning.tune()
    code = _changes(done["changed"], "was", done["errors"], "set")
    console.print(f"tuned: {len(done['changed'])} setting(s) changed; `sudo bench devices reset` restores them")
    return code


@app.command("reset")
@one_line_errors
def reset_command() -> int:
    """Restore what `bench devices tune` changed (root)."""
    _need_root("reset")
    done = tuning.reset()
    if not done["was_tuned"]:
        console.print("not tuned by `bench devices tune`: nothing to restore")
        return 0
    return _changes(done["restored"], "back to", done["errors"], "restore")


@app.command("stability")
@one_line_errors
def stability_command(
    name: str = typer.Argument(..., help="The device as stored in results (cpu, cuda:0, a devices.yaml name)."),
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
    since: Optional[str] = typer.Option(None, "--since", help="Only results from this date on (YYYY-MM-DD)."),
    min_runs: int = typer.Option(MIN_RUNS, "--min-runs", min=2, help="Runs a cell needs to be scored."),
) -> None:
    """Stability score (0-100) of a device over its stored history, per model and backend."""
    store = Store(db, must_exist=True)
    records = store.records(device=name, since=since)
    if not records:
        known = sorted({str(r["device"]) for r in store.records() if r.get("device")})
        raise UsageError(
            f"no stored results for device {name!r}" + (f" (devices with results: {', '.join(known)})" if known else "")
        )
    found = device_stability(records, min_runs)
    if not found["cells"]:
        raise UsageError(
            f"device {name!r}: no cell measured {min_runs} times or more yet (run the same cell again, or --min-runs 2)"
        )
    table = Table(
        title=f"Stability of {name}: {found['score']} ({found['rating']}) over {found['runs']} runs",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("model", "backend", "batch", "prec", "scenario", "runs", "median ms", "CV", "max/min", "p99/p50"):
        table.add_column(col, justify="right" if col not in ("model", "backend", "prec", "scenario") else "left")
    table.add_column("score", justify="right")
    table.add_column("rating")
    for c in found["cells"]:
        table.add_row(
            c.model, c.backend, str(c.batch), c.precision, c.scenario, str(c.runs), f"{c.median_ms:.4g}",
            f"{c.cv * 100:.1f}%", f"{c.max_min:.3f}", f"{c.p99_p50:.2f}", f"{c.score:.0f}", c.rating,
        )  # fmt: skip
    console.print(table)
    if found["too_few"]:
        console.print(f"[dim]{found['too_few']} cell(s) with fewer than {min_runs} runs not scored[/]")
