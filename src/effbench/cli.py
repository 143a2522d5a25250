"""`bench`: the command line. Every command has --help; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from effbench.console import console, error_line, result_table
from effbench.errors import EffbenchError, UsageError

app = typer.Typer(
    name="bench",
    help="effbench: measure latency, throughput, memory and energy of neural networks, and explain them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_OPTION_NAMES = {
    "batch_size": "--batch", "duration_s": "--duration", "warmup_s": "--warmup", "warmup_iters": "--warmup-iters",
    "min_iters": "--min-iters", "max_iters": "--max-iters", "target_ci": "--target-ci", "max_duration_s": "--max-duration",
    "timeout_s": "--timeout", "input_size": "--input-size", "energy_window_s": "--energy-window",
}


def _parse_opts(opts: list[str] | None) -> dict[str, str]:
    out = {}
    for o in opts or []:
        if "=" not in o:
            raise UsageError(f"--opt expects KEY=VALUE, got {o!r}")
        k, v = o.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def make_config(**kw):
    """RunConfig from CLI values; a bad value becomes one line naming the option."""
    from pydantic import ValidationError

    from effbench.harness.config import RunConfig

    try:
        return RunConfig(**kw)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        opt = _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))
        raise UsageError(f"invalid {opt}: {err['msg'].lower()} (got {err.get('input')!r})") from None


def _write_out(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(records, indent=1, default=str))
    tmp.replace(path)


def cells_from_run_options(p: dict) -> list:
    """The cells of one `bench run` command line (one per batch size)."""
    from effbench.harness.config import parse_int_list, parse_percent

    try:
        batches = parse_int_list(p["batch"])
        cpu_list = parse_int_list(p["cpus"]) if p["cpus"] else None
        tci = parse_percent(p["target_ci"])
    except ValueError as e:
        raise UsageError(f"invalid value: {e}") from None
    return [
        make_config(model=p["model"], backend=p["backend"], device=p["device"], batch_size=b,
                    precision=p["precision"], scenario=p["scenario"], threads=p["threads"], cpus=cpu_list,
                    warmup_s=p["warmup"], warmup_iters=p["warmup_iters"], duration_s=p["duration"],
                    min_iters=p["min_iters"], max_iters=p["max_iters"], target_ci=tci,
                    max_duration_s=p["max_duration"], requests=p["requests"], compile=p["compile"],
                    pretrained=p["pretrained"], input_size=p["input_size"], parity=p["parity"],
                    channels_last=p["channels_last"], cuda_graph=p["cuda_graph"],
                    energy_window_s=p["energy_window"], options=_parse_opts(p["opt"]), tag=p["tag"],
                    timeout_s=p["timeout"])
        for b in batches
    ]


def parse_run_args(text: str) -> list:
    """Cells from a `bench run` option string, e.g. "--model a.onnx --backend ort --batch 1"."""
    import shlex

    command = typer.main.get_command(app).commands["run"]
    try:
        ctx = command.make_context("run", shlex.split(text))
    except Exception as e:
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        raise UsageError(f"bad run options {text!r}: {msg}") from None
    return cells_from_run_options(ctx.params)


@app.command()
def run(
    model: str = typer.Option(..., "--model", "-m", help="Card name, timm:<name>, path.onnx, or package.module:factory."),
    backend: str = typer.Option(..., "--backend", "-b", help="Backend name or alias (`bench backends`)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda:0, or a devices.yaml name."),
    batch: str = typer.Option("1", "--batch", help="Batch size, or a list: 1,8,32 (one cell each)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | bf16 | fp16 | int8 (set explicitly in the runtime)."),
    scenario: str = typer.Option("latency", "--scenario", help="latency (one request at a time) | throughput."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime's own thread setting."),
    cpus: Optional[str] = typer.Option(None, "--cpus", help="Pin the worker to these CPUs, e.g. 0,1 or 0-3."),
    warmup: float = typer.Option(1.0, "--warmup", help="Warm-up seconds (also --warmup-iters)."),
    warmup_iters: int = typer.Option(10, "--warmup-iters", help="Minimum warm-up iterations."),
    duration: float = typer.Option(3.0, "--duration", help="Minimum measuring seconds."),
    min_iters: int = typer.Option(30, "--min-iters", help="Minimum measured iterations."),
    max_iters: int = typer.Option(200_000, "--max-iters", help="Stop after this many iterations (bounds stored samples)."),
    target_ci: Optional[str] = typer.Option(None, "--target-ci", help="Measure until the median's 95% CI half-width is within this, e.g. 1%."),
    max_duration: float = typer.Option(60.0, "--max-duration", help="Upper bound on measuring seconds with --target-ci."),
    requests: Optional[int] = typer.Option(None, "--requests", help="Requests in flight (throughput scenario)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model (torch backend)."),
    pretrained: bool = typer.Option(False, "--pretrained", help="Load pretrained weights from the hub (needs network)."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Override the input resolution."),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Compare outputs with the PyTorch reference."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format (torch)."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Capture a CUDA graph (torch on CUDA)."),
    energy_window: float = typer.Option(10.0, "--energy-window", help="Seconds per energy window (NVML)."),
    opt: Optional[List[str]] = typer.Option(None, "--opt", help=(
        "Backend option KEY=VALUE (repeatable): exporter=torchscript|dynamo, hint=latency|throughput and "
        "streams=N (openvino), ep=cuda|tensorrt (onnxruntime on GPU), workspace_mb=, calib_dir=, tf32=1 "
        "(tensorrt/torch CUDA), compute_units= (coreml), energy=0|1, energy_windows=N, idle_s=, busy_us= (null), "
        "analysis=0.")),
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database (path or SQLAlchemy URL)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write this run's records to a JSON file."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Label stored with the results."),
    timeout: float = typer.Option(900.0, "--timeout", help="Kill the worker after this many seconds."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    store_results: bool = typer.Option(True, "--store/--no-store", help="Write results to the database."),
):
    """Export, run and measure one model on one backend (one cell per batch size)."""
    from effbench.harness.runner import check_cell
    from effbench.harness.scheduler import run_cells
    from effbench.harness.store import Store

    cells = cells_from_run_options(locals())
    from effbench.devices.target import resolve_target

    if resolve_target(cells[0].device, cells[0].devices_file).execution == "remote":
        from effbench.devices.remote import check_remote_cell

        check_remote_cell(cells[0])
    else:
        check_cell(cells[0])  # unknown model / backend / precision: fail before any work
    store = Store(db) if store_results else None
    results = run_cells(cells, store, isolate=isolate)
    records = [r.to_dict() for r in results]
    if out:
        _write_out(out, records)
    console.print(result_table(records, title="bench run"))
    for r in records:
        if r["status"] != "ok":
            error_line(f"{r['model']} on {r['backend']} (batch {r['batch_size']}): {r['status']}: {r['error']}")
    if store is not None:
        console.print(f"[dim]stored {len(records)} result(s) in {store.display_url}[/]")
    if any(r["status"] != "ok" for r in records) or any((r.get("parity") or {}).get("ok") is False for r in records):
        raise typer.Exit(1)


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="Sweep YAML: lists models, backends (and batches, precisions, scenarios, devices) plus run options."),
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
    resume: bool = typer.Option(False, "--resume", help="Skip cells already stored with the same configuration hash."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume, run stored failed cells again."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Label stored with the results."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the records to a JSON file."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    farm: Optional[str] = typer.Option(None, "--farm", envvar="RAY_ADDRESS",
                                       help="Run the cells on a device farm: HOST:PORT of its head, or ray://HOST:10001."),
):
    """Run a matrix of cells; each finished cell is stored at once, failures are recorded and the sweep goes on."""
    from effbench.harness.scheduler import run_cells
    from effbench.harness.store import Store, display_url
    from effbench.harness.sweep import load_sweep

    cells = load_sweep(file, {"tag": tag} if tag else None)
    store = Store(db)
    skipped = 0
    if resume:
        done = store.config_hashes(status="ok" if retry_failed else None)
        before = len(cells)
        cells = [c for c in cells if c.config_hash() not in done]
        skipped = before - len(cells)
    console.print(f"sweep {file}: {len(cells)} cell(s) to run" + (f", {skipped} already stored" if skipped else "")
                  + (f" on the farm at {farm}" if farm else ""), highlight=False)
    resume_cmd = _resume_command(file, db and display_url(db), farm)
    finished = []
    try:
        if farm:
            from effbench.farm.submit import FarmInterrupted, run_on_farm

            try:
                run_on_farm(cells, store, farm, on_result=finished.append)
            except FarmInterrupted:
                raise KeyboardInterrupt from None
        else:
            run_cells(cells, store, isolate=isolate, on_result=finished.append)
    except KeyboardInterrupt:
        console.print(f"\n[yellow]interrupted:[/] {len(finished)} cell(s) finished and stored in {store.display_url}; "
                      f"resume with: {resume_cmd}", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    records = [r.to_dict() for r in finished]
    if out:
        _write_out(out, records)
    console.print(result_table(records, title=f"sweep {file.name}"))
    failed = sum(r["status"] not in ("ok", "lost") for r in records)
    lost = sum(r["status"] == "lost" for r in records)
    summary = f"{len(records) - failed - lost} ok, {failed} failed/crashed/skipped, {skipped} resumed from the store"
    console.print(summary + (f", {lost} lost by the farm: run them again with: {resume_cmd}" if lost else ""),
                  highlight=False, soft_wrap=True)


def _resume_command(file: Path, db: str | None, farm: str | None) -> str:
    """The command that picks the sweep up again (the database URL with its password masked)."""
    import shlex

    args = ["bench", "sweep", str(file), "--resume"] + (["--db", db] if db else []) + (["--farm", farm] if farm else [])
    return shlex.join(args)


@app.command()
def models(
    fmt: str = typer.Option("table", "--format", help="table | json"),
):
    """List the model cards (reported top-1, params and MACs with their sources)."""
    from rich.table import Table

    from effbench.models.registry import list_cards

    cards = list_cards()
    if fmt == "json":
        print(json.dumps([c.to_dict() for c in cards], indent=1))
        return
    if fmt != "table":
        raise UsageError(f"unknown --format {fmt!r}; use table or json")
    t = Table(title="model cards (any timm model also works as timm:<name>)")
    for col in ("name", "family", "input", "top-1 %", "params M", "MACs M", "source"):
        t.add_column(col)
    for c in cards:
        t.add_row(c.name, c.family, "x".join(map(str, c.input_shape)), str(c.top1), str(c.params_m), str(c.macs_m), c.source)
    console.print(t)


@app.command()
def backends(device: str = typer.Option("cpu", "--device", help="Check usability on this device.")):
    """List every backend with its version and whether it is usable here (and if not, why)."""
    from rich.table import Table

    from effbench.backends.registry import all_backends

    t = Table(title=f"backends (device {device})")
    for col in ("name", "aliases", "format", "precisions", "version", "usable", "why not"):
        t.add_column(col)
    for name, b in sorted(all_backends().items()):
        reason = b.unavailable_reason(device)
        t.add_row(name, ", ".join(b.aliases), b.artifact_format, ", ".join(b.precisions), b.version() or "-",
                  "[green]yes[/]" if reason is None else "[red]no[/]", reason or "")
    console.print(t)


@app.command()
def results(
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    model: Optional[str] = typer.Option(None, "--model"),
    backend: Optional[str] = typer.Option(None, "--backend"),
    device: Optional[str] = typer.Option(None, "--device"),
    tag: Optional[str] = typer.Option(None, "--tag"),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date or time, e.g. 2026-11-01"),
    limit: int = typer.Option(50, "--limit", help="Newest N results (0: all)."),
):
    """List stored results."""
    from effbench.harness.store import Store, records_to_dataframe

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown --format {fmt!r}; use table, csv or json")
    recs = Store(db).records(model=model, backend=backend, device=device, tag=tag, since=since)
    if limit:
        recs = recs[:limit]
    if fmt == "json":
        print(json.dumps(recs, indent=1, default=str))
    elif fmt == "csv":
        sys.stdout.write(records_to_dataframe(recs).to_csv(index=False))
    else:
        if not recs:
            console.print("no stored results match (run `bench run ...` first, or check --db and the filters)")
            return
        console.print(result_table(list(reversed(recs)), title=f"{len(recs)} stored result(s)"))


def _mount_optional() -> None:
    """Commands whose modules live in their own packages."""
    import importlib

    for module, attr, name, kind in [
        ("effbench.devices.commands", "app", "devices", "typer"),
        ("effbench.gate.commands", "baseline_app", "baseline", "typer"),
        ("effbench.gate.commands", "gate_command", "gate", "command"),
        ("effbench.analysis.commands", "profile_command", "profile", "command"),
        ("effbench.reports.commands", "report_command", "report", "command"),
        ("effbench.gate.ab", "ab_command", "ab", "command"),
        ("effbench.farm.commands", "app", "farm", "typer"),
    ]:
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if kind == "typer":
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


_mount_optional()


def _click_classes(name: str) -> tuple[type, ...]:
    """Typer vendors its own click (typer._click) in newer releases; accept either."""
    import importlib

    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if cls is not None:
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False)
    except EffbenchError as e:
        error_line(str(e))
        return e.exit_code
    except _click_classes("NoArgsIsHelpError"):
        return 0
    except _click_classes("UsageError") as e:
        ctx = getattr(e, "ctx", None)
        cmd = ctx.command_path if ctx else "bench"
        error_line(f"{e.format_message()} (see `{cmd} --help`)")
        return 2
    except _click_classes("Exit") as e:
        return getattr(e, "exit_code", 0)
    except _click_classes("Abort"):
        error_line("aborted")
        return 130
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
