"""`bench devices`: the device catalog (list, detect, calibrate, check), this device's settings that
move numbers (show, tune, reset: pyperf-style) and a device's stability score over its stored results."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from effbench.commands.options import DbOption
from effbench.console import console, one_line_errors
from effbench.core import tuning
from effbench.devices.catalog import ENV_VAR, DeviceSpec, Peak, load_catalog, local_device_name, resolve_path
from effbench.errors import UsageError
from effbench.harness.stability_score import MIN_RUNS, device_stability
from effbench.harness.store import Store, parse_since

app = typer.Typer(
    help="Device catalog: peak FLOP/s and memory bandwidth per device (devices.yaml), "
    "this machine's detected CPU, and measured (calibrated) peaks.",
    no_args_is_help=False,
)

DevicesFile = typer.Option(
    None,
    "--devices-file",
    envvar=ENV_VAR,
    dir_okay=False,
    help="Devices file to use (default: ./devices.yaml, else the packaged catalog).",
)


def _si(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _console() -> Console:
    """stdout console; output going to a file or pipe is not wrapped at 80 columns."""
    out = Console()
    return out if out.is_terminal else Console(width=max(out.width, 160))


def _cell(spec: DeviceSpec, precision: str) -> str:
    text = _si(spec.peak(precision, "spec"))
    cal = spec.peak(precision, "calibrated")
    return f"{text}\ncal {_si(cal)}" if cal else text


def _half_cell(spec: DeviceSpec) -> str:
    fp16, bf16 = spec.peak("fp16", "spec"), spec.peak("bf16", "spec")
    if fp16 and bf16 and fp16 != bf16:
        return f"{_si(fp16)} / {_si(bf16)}"
    return _cell(spec, "fp16" if fp16 or not bf16 else "bf16")


def _bw_cell(spec: DeviceSpec) -> str:
    text = _si(spec.bandwidth("spec"))
    cal = spec.bandwidth("calibrated")
    return f"{text}\ncal {_si(cal)}" if cal else text


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, devices_file: Optional[Path] = DevicesFile) -> None:
    """List devices when no subcommand is given."""
    ctx.obj = devices_file  # `bench devices --devices-file X list` works too
    if ctx.invoked_subcommand is None:
        list_devices(ctx, devices_file)


@app.command("list")
@one_line_errors
def list_devices(ctx: typer.Context, devices_file: Optional[Path] = DevicesFile) -> None:
    """Table of all devices with their dense peaks (FLOP/s) and memory bandwidth."""
    devices_file = devices_file or ctx.obj
    catalog = load_catalog(devices_file)
    out = _console()
    wide = out.width >= 130  # below that the description column only squeezes the numbers
    table = Table(
        title=f"Devices in {resolve_path(devices_file)}: dense peaks in FLOP/s (int8: OPS/s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    if wide:
        table.add_column("description", max_width=60, overflow="ellipsis", no_wrap=True)
    for head in ("fp32", "fp16/bf16", "int8", "mem B/s"):
        table.add_column(head, justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True)
    for name, spec in catalog.items():
        cells = [_cell(spec, "fp32"), _half_cell(spec), _cell(spec, "int8"), _bw_cell(spec), spec.origin]
        table.add_row(name, spec.kind, *([spec.description] if wide else []), *cells)
    out.print(table)


@app.command("detect")
@one_line_errors
def detect(ctx: typer.Context, devices_file: Optional[Path] = DevicesFile) -> None:
    """Show this machine's CPU and how its peaks were derived."""
    devices_file = devices_file or ctx.obj
    catalog = load_catalog(devices_file)
    name = local_device_name(catalog)
    if name in catalog and catalog[name].detected:
        spec = catalog[name]
    else:
        from effbench.devices.detect import detect_cpu

        spec = detect_cpu(name)
    d = spec.detected or {}
    out = _console()
    out.print(f"[bold]{name}[/bold]: {d.get('model')} ({d.get('vendor')})")
    out.print(
        f"  cores: {d.get('cores')} ({d.get('cores_how')}); "
        f"{d.get('usable_cpus')} usable of {d.get('logical_cpus')} logical CPUs"
    )
    ghz = d.get("ghz")
    out.print(f"  clock: {f'{ghz:.3f} GHz' if ghz else 'unknown'} from {d.get('clock_how')}")
    for precision, rate in (d.get("rates") or {}).items():
        out.print(f"  {precision}: {rate['per_cycle']} per cycle per core ({rate['why']})")
    for precision, peak in spec.peak_flops.items():
        out.print(
            f"  peak {precision}: {_si(peak.value, 'FLOP/s' if precision != 'int8' else 'OPS/s')}"
            f"  [dim]{peak.source}[/dim]",
            highlight=False,
        )
    bw = spec.bandwidth_entry("best")
    out.print(f"  memory bandwidth: {_si(bw.value, 'B/s') + '  ' + bw.source if bw else d.get('memory_bandwidth')}")


@app.command("calibrate")
@one_line_errors
def calibrate_cmd(
    ctx: typer.Context,
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N"),
    seconds: float = typer.Option(3.0, "--seconds", help="Rough total measuring time."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all usable cores)."),
    precision: Optional[list[str]] = typer.Option(
        None,
        "--precision",
        help="GEMM precision(s) to measure; default fp32 (+bf16 where the CPU has it; fp32, tf32, fp16, bf16 on CUDA).",
    ),
    save: bool = typer.Option(
        False, "--save/--no-save", help="Record the results as `calibrated:` in the devices file."
    ),
    devices_file: Optional[Path] = DevicesFile,
) -> None:
    """Measure GEMM FLOP/s and memory bandwidth; compare them with the spec/detected peaks."""
    from effbench.devices.calibrate import CUDA_PRECISIONS, calibrate, default_cpu_precisions, save_calibration

    devices_file = devices_file or ctx.obj
    catalog = load_catalog(devices_file)
    if precision:
        precisions = tuple(precision)
    else:
        precisions = default_cpu_precisions() if device == "cpu" else CUDA_PRECISIONS
    results = calibrate(device, seconds=seconds, threads=threads, precisions=precisions)
    name = results["device"]
    spec = catalog.get(name)

    table = Table(
        title=f"Calibration of {name} ({results['target']}, threads={results['threads']})", title_justify="left"
    )
    for head in ("quantity", "measured", "spec/detected", "measured / spec"):
        table.add_column(head, justify="left" if head == "quantity" else "right")
    rows = [
        (f"peak {p}", m["value"], spec.peak_entry(p, "spec") if spec else None, "FLOP/s")
        for p, m in results["peak_flops"].items()
    ]
    rows.append(
        (
            "memory bandwidth",
            results["memory_bandwidth"]["value"],
            spec.bandwidth_entry("spec") if spec else None,
            "B/s",
        )
    )
    for label, measured, ref, unit in rows:
        ratio = f"{measured / ref.value:.2f}" if isinstance(ref, Peak) else "-"
        table.add_row(label, _si(measured, unit), _si(ref.value, unit) if ref else "-", ratio)
    out = _console()
    out.print(table)
    above = [label for label, measured, ref, _ in rows if isinstance(ref, Peak) and measured > 1.05 * ref.value]
    if above:
        out.print(
            f"[yellow]measured above the spec/detected value for {', '.join(above)}[/]: a detected peak "
            "uses the clock the OS reports, which under a hypervisor is the nominal one; the calibrated "
            "value is the better roof here (with --save, results use calibrated roofs)"
        )
    if save:
        path = save_calibration(name, results, devices_file)
        out.print(f"saved as `calibrated:` for {name} in {path}")
    else:
        out.print("not saved (add --save to record these in the devices file)")


@app.command("check")
@one_line_errors
def check_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Device name in devices.yaml (an entry with ssh: is probed over ssh)."),
    devices_file: Optional[Path] = DevicesFile,
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    timeout: float = typer.Option(120.0, "--timeout", help="Give up after this many seconds."),
) -> None:
    """Connect to a device (ssh, or this machine) and report its OS, CPU, Python and runtimes."""
    from effbench.devices.catalog import get_device
    from effbench.devices.check import check_device, render_check

    devices_file = devices_file or (Path(ctx.obj) if isinstance(ctx.obj, (str, Path)) else None)
    report = check_device(get_device(name, devices_file), timeout)
    if as_json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(render_check(report))


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
    db: DbOption = None,
    since: Optional[str] = typer.Option(None, "--since", help="Only results from then on: ISO date or time."),
    min_runs: int = typer.Option(MIN_RUNS, "--min-runs", min=2, help="Runs a cell needs to be scored."),
) -> None:
    """Stability score (0-100) of a device over its stored history, per model and backend."""
    since_iso = parse_since(since)
    store = Store(db, must_exist=True)
    results = store.results(device=name, since=since_iso)
    if not results:
        known = store.distinct("device")
        raise UsageError(
            f"no stored results for device {name!r}" + (f" (devices with results: {', '.join(known)})" if known else "")
        )
    found = device_stability(results, min_runs)
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
