"""`bench`: the command line. Every command has --help; bad input is one line and exit code 2.

Commands of their own packages are loaded when they are used (`LAZY`), so `bench --help` and the
core commands start without importing what they do not need.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import typer
from typer.core import TyperGroup

from effbench.console import console, error_line, one_line_errors, result_table
from effbench.errors import EffbenchError, UsageError
from effbench.harness.defaults import default_of
from effbench.harness.sink import ResultSink, check_out_writable

if TYPE_CHECKING:
    from effbench.harness.result import Result

# name -> (module, attribute, "typer" app or "command" function, short help for `bench --help`)
LAZY = {
    "profile": (
        "effbench.commands.profile",
        "profile_command",
        "command",
        "Per-layer runtime times mapped through fused kernels to ONNX nodes.",
    ),
    "report": (
        "effbench.commands.report",
        "report_command",
        "command",
        "HTML dashboard, Markdown summary or CSV of stored results.",
    ),
    "site": ("effbench.commands.site", "app", "typer", "A static results site: history, change points, feed."),
    "gate": ("effbench.commands.gate", "gate_command", "command", "CI regression verdicts: current vs a baseline."),
    "baseline": ("effbench.commands.gate", "baseline_app", "typer", "Save and list regression-gate baselines."),
    "ab": ("effbench.commands.ab", "ab_command", "command", "A/B runs, interleaved, with the gate's verdicts."),
    "max-qps": (
        "effbench.commands.max_qps",
        "max_qps_command",
        "command",
        "The highest LoadGen Server QPS whose p99 meets a bound (bracketing search).",
    ),
    "devices": (
        "effbench.commands.devices",
        "app",
        "typer",
        "Device catalog (list, detect, calibrate, check), settings (show, tune, reset), stability.",
    ),
    "claims": ("effbench.commands.claims", "claims_app", "typer", "Re-measure published speed claims side by side."),
    "farm": ("effbench.commands.farm", "app", "typer", "A device farm on Ray: join, status."),
    "predictor": ("effbench.commands.predict", "app", "typer", "Build, validate and share latency predictors."),
    "predict": (
        "effbench.commands.predict",
        "predict_command",
        "command",
        "Predict a model's latency from a predictor.",
    ),
}


class LazyGroup(TyperGroup):
    """Loads a LAZY command's module only when the command runs (help lists it from LAZY)."""

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *(n for n in LAZY if n not in self.commands)]

    def get_command(self, ctx, name):
        if name in self.commands or name not in LAZY:
            return super().get_command(ctx, name)
        return typer.core.TyperCommand(name, help=LAZY[name][3], short_help=LAZY[name][3])

    def resolve_command(self, ctx, args):
        if args and args[0] in LAZY and args[0] not in self.commands:
            _load(args[0])
        return super().resolve_command(ctx, args)


def _load(name: str) -> None:
    module, attr, kind, _ = LAZY[name]
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"`bench {name}` is not available in this installation ({e})") from None
    group = _click_group()
    if kind == "typer":
        group.add_command(typer.main.get_command(obj), name)
    else:
        sub = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        sub.command(name)(obj)
        group.add_command(typer.main.get_command(sub), name)


app = typer.Typer(
    name="bench",
    cls=LazyGroup,
    help="effbench: measure latency, throughput, memory and energy of neural networks, and explain them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
results_app = typer.Typer(
    help="Stored results: list them, import spooled ones.", no_args_is_help=False, invoke_without_command=True
)
app.add_typer(results_app, name="results")

_GROUP: list[Any] = []


def _click_group():
    if not _GROUP:
        _GROUP.append(typer.main.get_command(app))
    return _GROUP[0]


_OPTION_NAMES = {
    "batch_size": "--batch",
    "duration_s": "--duration",
    "warmup_s": "--warmup",
    "warmup_iters": "--warmup-iters",
    "min_iters": "--min-iters",
    "max_iters": "--max-iters",
    "target_ci": "--target-ci",
    "max_duration_s": "--max-duration",
    "timeout_s": "--timeout",
    "input_size": "--input-size",
    "energy_window_s": "--energy-window",
    "cpus": "--cpus",
    "calib_size": "--calib-size",
    "eval_limit": "--eval-limit",
    "max_drop": "--max-drop",
    "window_s": "--window",
    "latency_bound_ms": "--latency-bound",
    "cooldown_timeout_s": "--cooldown-timeout",
    "cooldown_s": "--cooldown",
    "max_fallback": "--max-fallback",
}
_EXAMPLES = {
    "--batch": "--batch 1,8,32",
    "--duration": "--duration 3 or --duration 10m",
    "--window": "--window 60s",
    "--target-qps": "--target-qps 100",
    "--latency-bound": "--latency-bound 15ms",
    "--p99": "--p99 15ms",
    "--samples-per-query": "--samples-per-query 8",
    "--cooldown-timeout": "--cooldown-timeout 10m",
    "--cooldown": "--cooldown 30s",
    "--max-start-temp": "--max-start-temp 45",
    "--warmup": "--warmup 1",
    "--target-ci": "--target-ci 1%",
    "--cpus": "--cpus 0,1",
    "--threads": "--threads 2",
    "--input-size": "--input-size 224 or 160,224,288",
    "--timeout": "--timeout 900",
    "--max-duration": "--max-duration 60",
    "--min-iters": "--min-iters 30",
    "--max-iters": "--max-iters 200000",
    "--warmup-iters": "--warmup-iters 10",
    "--requests": "--requests 4",
    "--energy-window": "--energy-window 10",
    "--max-drop": "--max-drop 1%",
    "--calib-size": "--calib-size 300",
    "--eval-limit": "--eval-limit 1000",
}


def _bad(option: str, value, why: str) -> UsageError:
    example = _EXAMPLES.get(option)
    return UsageError(f"invalid {option} {value!r}: {why}" + (f" (e.g. {example})" if example else ""))


def _parse_opts(opts: list[str] | None) -> dict[str, str]:
    out = {}
    for o in opts or []:
        if "=" not in o or not o.split("=", 1)[0].strip():
            raise UsageError(f"--opt expects KEY=VALUE, got {o!r} (e.g. --opt streams=2)")
        k, v = o.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def make_config(**kw):
    """RunConfig from command-line values; a bad value becomes one line naming the option."""
    from pydantic import ValidationError

    from effbench.harness.config import RunConfig

    try:
        return RunConfig(**kw)
    except ValidationError as e:
        err = e.errors()[0]
        if not err["loc"]:  # a rule over several options (a scenario's own check) names them itself
            raise UsageError(str(err["msg"]).removeprefix("Value error, ")) from None
        field = str(err["loc"][0])
        opt = _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))
        raise _bad(opt, err.get("input"), err["msg"].lower().removeprefix("value error, ")) from None


def _float(option: str, value) -> float | None:
    import math

    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _bad(option, value, "not a number") from None
    if not math.isfinite(v):
        raise _bad(option, value, "must be a finite number")
    return v


_DURATIONS = ("duration", "window", "cooldown_timeout", "cooldown")


def _duration(option: str, value) -> float | None:
    """Seconds of a duration option: a number (checked like any number; its range is RunConfig's) or
    a number with a unit (10m, 60s, 1.5h, 250ms)."""
    from effbench.harness.config import parse_duration

    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            return parse_duration(value)
        except ValueError as e:
            raise _bad(option, value, str(e)) from None
    return _float(option, number)


def _cpus(value: str | None, device: str) -> list[int] | str | None:
    """--cpus: a CPU list, or big / little (a cluster; checked here when the device is this machine)."""
    from effbench.harness.config import parse_int_list

    if value in ("big", "little"):
        if device in ("cpu", "local"):
            from effbench.core.cell import pinned_cpus

            try:
                pinned_cpus(value)
            except ValueError as e:
                raise _bad("--cpus", value, f"{e}; pin to CPU indices instead") from None
        return value
    try:
        return parse_int_list(value, "CPU index", allow_ranges=True, minimum=0) if value else None
    except ValueError as e:
        raise _bad("--cpus", value, f"{e}, or big / little on a big.LITTLE CPU") from None


def cells_from_run_options(p: dict) -> list:
    """The cells of one `bench run` command line (one per batch size)."""
    from effbench.core.probes.gate import check_limit as gate_limit_problem
    from effbench.core.scenarios import SCENARIOS
    from effbench.harness.config import parse_int_list, parse_percent

    try:
        batches = parse_int_list(p["batch"], "positive integer")
    except ValueError as e:
        raise _bad("--batch", p["batch"], f"{e}; expected a comma list of positive integers") from None
    if len(set(batches)) != len(batches):
        raise _bad("--batch", p["batch"], "a batch size is listed twice")
    sizes = _input_sizes(p.get("input_size"))
    cpu_list = _cpus(p["cpus"], p["device"])
    try:
        tci = parse_percent(p["target_ci"])
    except ValueError as e:
        raise _bad("--target-ci", p["target_ci"], str(e)) from None
    try:
        max_drop = parse_percent(p.get("max_drop"))
    except ValueError as e:
        raise _bad("--max-drop", p.get("max_drop"), str(e)) from None
    try:
        max_fallback = parse_percent(p.get("max_fallback"))
    except ValueError as e:
        raise _bad("--max-fallback", p.get("max_fallback"), str(e)) from None
    for opt in ("warmup", "max_duration", "energy_window", "timeout"):
        _float("--" + opt.replace("_", "-"), p[opt])
    max_start_temp = _float("--max-start-temp", p.get("max_start_temp"))
    why = gate_limit_problem(max_start_temp)
    if why:
        raise _bad("--max-start-temp", max_start_temp, why)
    durations = {opt: _duration("--" + opt.replace("_", "-"), p.get(opt)) for opt in _DURATIONS}
    windowed = [name for name, sc in SCENARIOS.items() if "window_s" in sc.own_settings]
    if durations["window"] and p["scenario"] in SCENARIOS and p["scenario"] not in windowed:
        raise _bad("--window", p.get("window"), f"only --scenario {' | '.join(windowed)} measures in windows")
    options = _parse_opts(p["opt"])
    bound_ms = parse_latency_bound(p.get("latency_bound"))
    return [
        make_config(
            model=p["model"],
            backend=p["backend"],
            device=p["device"],
            batch_size=b,
            precision=p["precision"],
            scenario=p["scenario"],
            threads=p["threads"],
            cpus=cpu_list,
            warmup_s=p["warmup"],
            warmup_iters=p["warmup_iters"],
            duration_s=durations["duration"],
            window_s=durations["window"],
            target_qps=_float("--target-qps", p.get("target_qps")),
            latency_bound_ms=bound_ms,
            samples_per_query=p.get("samples_per_query", default_of("samples_per_query")),
            max_start_temp=max_start_temp,
            cooldown_timeout_s=durations["cooldown_timeout"] or default_of("cooldown_timeout_s"),
            cooldown_s=durations["cooldown"] or 0.0,
            telemetry=p.get("telemetry", default_of("telemetry")),
            min_iters=p["min_iters"],
            max_iters=p["max_iters"],
            target_ci=tci,
            max_duration_s=p["max_duration"],
            requests=p["requests"],
            compile=p["compile"],
            pretrained=p["pretrained"],
            weights=p["weights"],
            input_size=size,
            parity=p["parity"],
            seed=p["seed"],
            channels_last=p["channels_last"],
            cuda_graph=p["cuda_graph"],
            energy_window_s=p["energy_window"],
            options=options,
            tag=p["tag"],
            timeout_s=p["timeout"],
            calib=p["calib"],
            calib_size=p["calib_size"],
            eval=p.get("eval", p.get("eval_dir")),
            eval_labels=p["eval_labels"],
            eval_limit=p["eval_limit"],
            skip_bad_images=p["skip_bad_images"],
            max_drop=max_drop * 100 if max_drop else None,
            max_fallback=max_fallback * 100 if max_fallback is not None else None,
            crop_pct=p.get("crop_pct"),
            interpolation=p.get("interpolation"),
            mean=p.get("mean"),
            std=p.get("std"),
        )
        for size in sizes
        for b in batches
    ]


def _input_sizes(text) -> list[int | None]:
    """--input-size 224 or a list, 160,224,288 (one cell each); [None]: the model's own."""
    from effbench.harness.config import parse_int_list

    if text is None or text == "":
        return [None]
    try:
        sizes: list[int | None] = list(parse_int_list(str(text), "size in pixels"))
    except ValueError as e:
        raise _bad("--input-size", text, f"{e}; expected a size or a comma list of sizes") from None
    if len(set(sizes)) != len(sizes):
        raise _bad("--input-size", text, "a size is listed twice")
    return sizes


def parse_latency_bound(text: str | None, option: str = "--latency-bound") -> float | None:
    """--latency-bound in ms: '15ms', '0.015s', or a bare number of milliseconds."""
    from effbench.harness.config import parse_duration

    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            return (parse_duration(text) or 0.0) * 1000
        except ValueError as e:
            raise _bad(option, text, str(e)) from None
    if not value > 0 or value == float("inf"):
        raise _bad(option, text, "must be a positive latency")
    return value


def parse_run_args(text: str) -> list:
    """Cells from a `bench run` option string, e.g. "--model a.onnx --backend ort --batch 1"."""
    import shlex

    command = _click_group().commands["run"]
    try:
        ctx = command.make_context("run", shlex.split(text))
    except Exception as e:
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        raise UsageError(f"bad run options {text!r}: {msg}") from None
    return cells_from_run_options(ctx.params)


def _early_fork_server(isolate: bool):
    """The fork server, started before this process imports the harness: its imports (numpy, the
    measuring code) overlap ours. Its runtimes follow once the cells are known (`_local_workers`)."""
    if not isolate:
        return None
    from effbench.harness.forkserver import start_fork_server

    return start_fork_server()


def _local_workers(isolate: bool, backends: list[str], server=None) -> dict:
    """The local launcher, on `server` (or a fork server started now), which is told to import the
    runtimes these backends need: its imports overlap the checks and the preparation done here."""
    if not isolate:
        return {}
    from effbench.backends.registry import get_backend
    from effbench.harness.launchers.local import Workers
    from effbench.harness.scheduler import LOCAL_LANE

    preload: list[str] = []
    for name in dict.fromkeys(backends):
        try:
            preload.extend(get_backend(name).preload)
        except EffbenchError:
            pass  # the checks say what is wrong with the name
    workers = Workers(tuple(dict.fromkeys(preload)), server)
    workers.start_server()
    return {LOCAL_LANE: workers}


def _say_once(records: list[dict]) -> None:
    """What concerns a whole run rather than each result (a thermal gate with no sensor)."""
    from effbench.harness.telemetry import gate_skipped_lines

    for line in gate_skipped_lines(records):
        console.print(f"[yellow]{line}[/]")


@app.command()
def run(
    model: str = typer.Option(
        ..., "--model", "-m", help="Card name, timm:<name>, path.onnx, or package.module:factory."
    ),
    backend: str = typer.Option(..., "--backend", "-b", help="Backend name or alias (`bench backends`)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda:0, or a devices.yaml name."),
    batch: str = typer.Option("1", "--batch", help="Batch size, or a list: 1,8,32 (one cell each)."),
    precision: str = typer.Option(
        default_of("precision"),
        "--precision",
        help="fp32 | bf16 | fp16 | int8 (set explicitly in the runtime; int8 is calibrated).",
    ),
    scenario: str = typer.Option(
        default_of("scenario"),
        "--scenario",
        help="latency (one at a time) | throughput (requests in flight) | sustained (slowdown over --duration) | "
        "MLPerf LoadGen's singlestream | multistream | server | offline.",
    ),
    threads: Optional[int] = typer.Option(default_of("threads"), "--threads", help="Runtime's own thread setting."),
    cpus: Optional[str] = typer.Option(
        None,
        "--cpus",
        help="Pin the worker to these CPUs, e.g. 0,1 or 0-3, or to a big.LITTLE cluster: big | little.",
    ),
    warmup: float = typer.Option(default_of("warmup_s"), "--warmup", help="Warm-up seconds (also --warmup-iters)."),
    warmup_iters: int = typer.Option(default_of("warmup_iters"), "--warmup-iters", help="Minimum warm-up iterations."),
    duration: str = typer.Option(
        str(default_of("duration_s")), "--duration", help="Minimum measuring time: seconds, or 90s, 10m, 1h."
    ),
    window: Optional[str] = typer.Option(
        None, "--window", help="Sustained scenario: window length, e.g. 60s (default: a tenth of --duration, <= 60s)."
    ),
    target_qps: Optional[str] = typer.Option(
        None, "--target-qps", help="LoadGen server: queries/s offered (default: half a short latency run's rate)."
    ),
    latency_bound: Optional[str] = typer.Option(
        None, "--latency-bound", help="LoadGen server: the p99 bound, e.g. 15ms (a bare number is ms)."
    ),
    samples_per_query: int = typer.Option(
        default_of("samples_per_query"), "--samples-per-query", help="LoadGen multistream: frames per query."
    ),
    max_start_temp: Optional[float] = typer.Option(
        None, "--max-start-temp", help="Thermal gate: wait until the hottest sensor is below this many C."
    ),
    cooldown_timeout: str = typer.Option(
        str(default_of("cooldown_timeout_s")),
        "--cooldown-timeout",
        help="Thermal gate: wait at most this long (then go on, with a warning).",
    ),
    cooldown: Optional[str] = typer.Option(None, "--cooldown", help="Pause this long before each cell, e.g. 30s."),
    telemetry: bool = typer.Option(
        default_of("telemetry"), "--telemetry/--no-telemetry", help="Read temperatures, clocks and load around cells."
    ),
    min_iters: int = typer.Option(default_of("min_iters"), "--min-iters", help="Minimum measured iterations."),
    max_iters: int = typer.Option(
        default_of("max_iters"), "--max-iters", help="Stop after this many iterations (bounds stored samples)."
    ),
    target_ci: Optional[str] = typer.Option(
        None, "--target-ci", help="Measure until the median's 95% CI half-width is within this, e.g. 1%."
    ),
    max_duration: float = typer.Option(
        default_of("max_duration_s"), "--max-duration", help="Upper bound on measuring seconds with --target-ci."
    ),
    requests: Optional[int] = typer.Option(
        default_of("requests"), "--requests", help="Requests in flight (throughput)."
    ),
    compile: bool = typer.Option(default_of("compile"), "--compile", help="torch.compile the model (torch backend)."),
    pretrained: bool = typer.Option(
        default_of("pretrained"),
        "--pretrained",
        help="Pretrained timm weights (local hub cache first; needs network otherwise).",
    ),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict (.pth/.pt or .safetensors) to load."),
    seed: int = typer.Option(default_of("seed"), "--seed", help="Seed of random weights and inputs."),
    input_size: Optional[str] = typer.Option(
        None, "--input-size", help="Input resolution, or a list: 160,224,288 (one cell each; export cached per size)."
    ),
    parity: bool = typer.Option(
        default_of("parity"), "--parity/--no-parity", help="Compare outputs with the reference."
    ),
    channels_last: bool = typer.Option(default_of("channels_last"), "--channels-last", help="channels_last (torch)."),
    cuda_graph: bool = typer.Option(
        default_of("cuda_graph"), "--cuda-graph", help="Capture a CUDA graph (torch, TensorRT)."
    ),
    energy_window: float = typer.Option(
        default_of("energy_window_s"), "--energy-window", help="Seconds per energy window (NVML)."
    ),
    calib: Optional[str] = typer.Option(None, "--calib", help="int8 calibration images: an ImageFolder or a folder."),
    calib_size: int = typer.Option(default_of("calib_size"), "--calib-size", help="Calibration images to use."),
    eval_dir: Optional[str] = typer.Option(
        None, "--eval", help="Measure top-1/top-5 on this ImageFolder, on the timed engine."
    ),
    eval_labels: Optional[str] = typer.Option(
        None, "--eval-labels", help="File mapping folder or file names to the model's class indices."
    ),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Evaluate at most this many images."),
    skip_bad_images: bool = typer.Option(False, "--skip-bad-images", help="Count and skip unreadable images."),
    max_drop: Optional[str] = typer.Option(
        None, "--max-drop", help="int8 on openvino: accuracy-aware quantisation within this top-1 drop, e.g. 1%."
    ),
    max_fallback: Optional[str] = typer.Option(
        None,
        "--max-fallback",
        help="Fail the run (exit 1, recorded) when more than this share of the model ran outside the "
        "requested delegate/device or precision, e.g. 5%.",
    ),
    crop_pct: Optional[float] = typer.Option(
        None, "--crop-pct", help="Image preprocessing: centre-crop fraction (default: the model's, else 0.875)."
    ),
    interpolation: Optional[str] = typer.Option(None, "--interpolation", help="Resize: bilinear | bicubic | nearest."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Normalisation mean, e.g. 0.485,0.456,0.406 (ImageNet's)."),
    std: Optional[str] = typer.Option(None, "--std", help="Normalisation std, e.g. 0.229,0.224,0.225 (ImageNet's)."),
    opt: Optional[List[str]] = typer.Option(
        None,
        "--opt",
        help=("Backend option KEY=VALUE (repeatable), typed per backend: `bench backends --options NAME` lists them."),
    ),
    db: Optional[str] = typer.Option(
        None, "--db", envvar="EFFBENCH_DB", help="Results database (path or SQLAlchemy URL)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write this run's records to a JSON file."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Label stored with the results."),
    timeout: float = typer.Option(
        default_of("timeout_s"), "--timeout", help="Kill the worker after this many seconds."
    ),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    store_results: bool = typer.Option(True, "--store/--no-store", help="Write results to the database."),
    dynamic: bool = typer.Option(
        False,
        "--dynamic",
        help="Also export one graph with dynamic batch/height/width and measure it at each listed shape "
        "(first run after a shape switch, steady latency) against the static cells (onnxruntime).",
    ),
):
    """Export, run and measure one model on one backend (one cell per batch size and input size)."""
    params = dict(locals())
    params["eval"] = params.pop("eval_dir")
    launchers: dict = {}
    server = _early_fork_server(isolate)
    try:
        _run(params, out, db, store_results, isolate, launchers, server)
    finally:
        for launcher in launchers.values():
            launcher.close()
        if server is not None:
            server.close()


def _run(
    params: dict, out: Path | None, db: str | None, store_results: bool, isolate: bool, launchers: dict, server
) -> None:
    from effbench.harness.prepare import check_cell
    from effbench.harness.scheduler import prepare_cells, run_cells
    from effbench.harness.store import Store

    cells = cells_from_run_options(params)
    check_out_writable(out)
    launchers.update(_local_workers(isolate, [params["backend"]], server))  # its start-up overlaps the checks
    checked = [check_cell(cell) for cell in cells]  # unknown model / backend / option / precision: before any work
    if params.get("dynamic"):
        from effbench.harness.dynamic_shapes import check as check_dynamic

        for c in checked:
            check_dynamic(c)
    store = Store(db) if store_results else None
    # built in a process of its own: a factory that returns no module or a weights file that does not
    # fit is exit 2 before measuring; one that fails or crashes is the cell's record (the run goes on)
    prepared = prepare_cells(cells, checked=checked, isolate=isolate)
    sink = ResultSink(out, store, "bench run")
    on_result: Callable[[Result], None] = sink
    if params.get("dynamic"):
        from effbench.harness.dynamic_shapes import with_dynamic

        on_result = with_dynamic(sink, prepared, cells[0].duration_s)
    try:
        results = run_cells(cells, None, isolate=isolate, on_result=on_result, launchers=launchers, prepared=prepared)
    except KeyboardInterrupt:
        sink.summary()  # a result spooled on the way out is named with its import command
        raise
    records = [r.to_dict() for r in results]
    console.print(result_table(records, title="bench run"))
    _say_once(records)
    for r in records:
        if r["status"] != "ok":
            error_line(f"{r['model']} on {r['backend']} (batch {r['batch_size']}): {r['status']}: {r['error']}")
    code = sink.summary()
    if (
        code
        or any(r["status"] != "ok" for r in records)
        or any((r.get("parity") or {}).get("ok") is False for r in records)
    ):
        raise typer.Exit(1)


@app.command()
def sweep(
    file: Path = typer.Argument(
        ..., help="Sweep YAML: lists models, backends (and batches, precisions, scenarios, devices) plus run options."
    ),
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
    resume: bool = typer.Option(
        False, "--resume", help="Skip cells already stored with the same configuration and tag."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume, run stored failed cells again."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Label stored with the results."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the records to a JSON file."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    farm: Optional[str] = typer.Option(
        None,
        "--farm",
        envvar="RAY_ADDRESS",
        help="Run the cells on a device farm: HOST:PORT of its head, or ray://HOST:10001.",
    ),
):
    """Run a matrix of cells: all prepared first, then measured back to back; each finished cell is stored
    at once, failures are recorded and the sweep goes on."""
    server = None if farm else _early_fork_server(isolate)
    try:
        _sweep(file, db, resume, retry_failed, tag, out, isolate, farm, server)
    finally:
        if server is not None:
            server.close()


def _sweep(file: Path, db, resume: bool, retry_failed: bool, tag, out, isolate: bool, farm, server) -> None:
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
    launchers = {} if farm else _local_workers(isolate, [c.backend for c in cells], server)
    try:
        if farm:
            from effbench.farm.submit import FarmInterrupted, run_on_farm

            try:
                run_on_farm(cells, farm, on_result=sink)
            except FarmInterrupted:
                raise KeyboardInterrupt from None
        else:
            run_cells(cells, None, isolate=isolate, on_result=sink, launchers=launchers)
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
    _say_once(sink.records)
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


@app.command()
def models(fmt: str = typer.Option("table", "--format", help="table | json")):
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
        t.add_row(
            c.name, c.family, "x".join(map(str, c.input_shape)), str(c.top1), str(c.params_m), str(c.macs_m), c.source
        )
    console.print(t)


@app.command()
def backends(
    device: str = typer.Option("cpu", "--device", help="Check usability on this device."),
    options: Optional[str] = typer.Option(None, "--options", help="List this backend's --opt options."),
):
    """List every backend with its version and whether it is usable here (and if not, why)."""
    from rich.table import Table

    from effbench.backends.registry import all_backends, get_backend

    if options:
        from effbench.harness.options import describe

        backend = get_backend(options)
        t = Table(title=f"--opt options of {backend.name} (KEY=VALUE)")
        for col in ("option", "type", "default", "applies to", "help"):
            t.add_column(col)
        for row in describe(backend):
            t.add_row(
                str(row["option"]), str(row["type"]), repr(row["default"]), str(row["applies_to"]), str(row["help"])
            )
        console.print(t)
        return
    t = Table(title=f"backends (device {device})")
    for col in ("name", "aliases", "format", "precisions", "version", "usable", "why not"):
        t.add_column(col)
    for name, b in sorted(all_backends().items()):
        reason = b.unavailable_reason(device)
        t.add_row(
            name,
            ", ".join(b.aliases),
            b.artifact_format,
            ", ".join(b.precisions),
            b.version() or "-",
            "[green]yes[/]" if reason is None else "[red]no[/]",
            reason or "",
        )
    console.print(t)


@results_app.callback()
def results(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    model: Optional[str] = typer.Option(None, "--model"),
    backend: Optional[str] = typer.Option(None, "--backend"),
    device: Optional[str] = typer.Option(None, "--device"),
    tag: Optional[str] = typer.Option(None, "--tag"),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date or time, e.g. 2026-11-01"),
    limit: int = typer.Option(50, "--limit", help="Newest N results (0: all)."),
):
    """List stored results (`bench results import FILE` adds spooled ones)."""
    if ctx.invoked_subcommand is not None:
        return
    from effbench.harness.store import Store, parse_since, records_to_dataframe

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown --format {fmt!r}; use table, csv or json")
    if limit < 0:
        raise _bad("--limit", limit, "must be 0 (all) or more")
    since_iso = parse_since(since)
    if backend:
        from effbench.backends.registry import canonical_name

        try:
            backend = canonical_name(backend)
        except EffbenchError:
            pass  # a name as typed: records of unregistered backends keep theirs
    recs = Store(db, must_exist=True).records(model=model, backend=backend, device=device, tag=tag, since=since_iso)
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


@results_app.command("import")
@one_line_errors
def results_import(
    file: Path = typer.Argument(..., help="A spool file (.jsonl) or a `bench run --out` file (.json)."),
    db: Optional[str] = typer.Option(None, "--db", envvar="EFFBENCH_DB", help="Results database."),
):
    """Add records from a spool or --out file to the store (records already there are skipped; a bad
    line is reported by its number and skipped, the others are imported; exit 1 when any was skipped)."""
    from rich.markup import escape

    from effbench.harness.spool import read_records
    from effbench.harness.store import Store

    records, skipped = read_records(file)
    store = Store(db)
    added, present = store.import_records(records)
    for problem in skipped:
        error_line(escape(f"{problem}: skipped"))
    console.print(
        f"imported {added} record(s) into {store.display_url}"
        + (f"; {present} were already there" if present else "")
        + (f"; {len(skipped)} skipped" if skipped else "")
    )
    return 1 if skipped else 0


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """Typer vendors its own click (typer._click) in newer releases; accept either."""
    found: list[type[BaseException]] = []
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
        rc = _click_group().main(args=argv, prog_name="bench", standalone_mode=False)
    except EffbenchError as e:
        error_line(str(e))
        return e.exit_code
    except _click_classes("NoArgsIsHelpError"):
        return 0
    except _click_classes("UsageError") as e:
        ctx = getattr(e, "ctx", None)
        cmd = ctx.command_path if ctx else "bench"
        error_line(f"{getattr(e, 'format_message', e.__str__)()} (see `{cmd} --help`)")
        return 2
    except _click_classes("Exit") as e:
        return getattr(e, "exit_code", 0)
    except _click_classes("Abort"):
        error_line("interrupted")
        return 130
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug, not bad input: still one line (EFFBENCH_DEBUG=1 shows the traceback)
        import os

        if os.environ.get("EFFBENCH_DEBUG") == "1":
            raise
        error_line(
            f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
            "(set EFFBENCH_DEBUG=1 for the traceback, and please report it)"
        )
        return 1
    if rc == 130:  # typer turns Ctrl-C into exit code 130 by itself, silently
        error_line("interrupted")
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
