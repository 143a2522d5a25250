"""`bench predictor build|validate|list|show|export|import` and `bench predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from effbench.console import console, one_line_errors
from effbench.errors import UsageError

if TYPE_CHECKING:
    from effbench.predict.predictor import Predictor

app = typer.Typer(
    name="predictor",
    no_args_is_help=True,
    help="Per-device latency predictors built from effbench's own kernel measurements.",
)

BACKEND_HELP = "The backend the predictor measures through (openvino, onnxruntime, litert)."
DEVICE_HELP = "The device: cpu (this machine), or the name of the device a shared predictor was built on."


def _names(text: str | None, default: list[str]) -> list[str]:
    if text is None:
        return default
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise UsageError(f"empty name in {text!r}: give a comma-separated list of models")
    return names


def _resolutions(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "default":
            out.append(None)
        elif part.isdigit() and 32 <= int(part) <= 2048:
            out.append(int(part))
        else:
            raise UsageError(f"--resolutions {text!r}: each entry is 'default' or a size in pixels (32-2048)")
    return out


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False)


@app.command("build")
@one_line_errors
def build_command(
    backend: str = typer.Option("openvino", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("cpu", "--device", help="The device to build on: cpu (this machine)."),
    budget: float = typer.Option(20.0, "--budget", help="Minutes the build may take; rerun to resume a cut build."),
    zoo: Optional[str] = typer.Option(
        None,
        "--zoo",
        help="Models to build on, comma-separated (default: the model cards plus a list of efficient timm models).",
    ),
    resolutions: str = typer.Option("default,160", "--resolutions", help="Input sizes the zoo is exported at."),
    fresh: bool = typer.Option(False, "--fresh", help="Forget earlier measurements of this build."),
    threads: int = typer.Option(1, "--threads", help="The runtime's thread count the predictor is for."),
) -> None:
    """Measure the kernel set of a model zoo on this machine, fit per-kernel regressors, save."""
    from effbench.predict import zoo as zoo_lists
    from effbench.predict.build import build
    from effbench.predict.stats import describe_unseen

    if budget <= 0:
        raise UsageError("--budget must be a positive number of minutes")
    if threads < 1:
        raise UsageError("--threads must be 1 or more")
    report = build(
        backend,
        device,
        _names(zoo, zoo_lists.build_zoo()),
        _resolutions(resolutions),
        budget * 60,
        _say,
        fresh=fresh,
        threads=threads,
    )
    corr = report.predictor.data["correction"]
    loo = corr.get("loo") or {}
    _say(
        f"predictor {report.predictor.id}: {report.kernels_measured} kernels measured of {report.kernels_total} "
        f"in the models exported, {report.models_measured} zoo models, {report.seconds / 60:.1f} min; "
        f"saved to {report.path}"
    )
    if report.kept is not None:
        _say(
            f"kept the installed predictor {report.kept.id}: it covers more ({len(report.kept.data['table'])} "
            f"kernels, {len(report.kept.data.get('training_models') or [])} zoo models); run the build again "
            "(without --fresh) to extend this one past it"
        )
    if loo:
        _say(f"leave-one-model-out on the zoo: {loo['within_10']:.0%} within ±10%, RMSPE {loo['rmspe']:.1%}")
    unseen = describe_unseen(corr.get("unseen"))
    if unseen:
        _say(unseen)
    if report.failed:
        _say(
            f"{len(report.failed)} zoo model(s) skipped: "
            + "; ".join(f"{f['model']} ({f['error']})" for f in report.failed[:5])
        )
    if not report.complete:
        _say("the budget ran out before every kernel was measured: run the same command again to resume")
        raise typer.Exit(1)
    _say(f"next: bench predictor validate --backend {report.predictor.backend} --device {device}")


@app.command("validate")
@one_line_errors
def validate_command(
    backend: str = typer.Option("openvino", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    models: Optional[str] = typer.Option(
        None,
        "--models",
        help="Held-out models, comma-separated (default: a list of efficient timm models never used in building).",
    ),
    predictor_file: Optional[Path] = typer.Option(
        None, "--predictor", help="A predictor file instead of the installed one."
    ),
) -> None:
    """Measure held-out models, compare with their predictions, store the statistics with the predictor."""
    from effbench.predict import zoo as zoo_lists
    from effbench.predict.build import validate
    from effbench.predict.stats import describe

    predictor, warnings = load_predictor(backend, device, predictor_file, measuring=True)
    for w in warnings:
        _say(f"warning: {w}")
    stats = validate(predictor, _names(models, zoo_lists.HELD_OUT), _say)
    _say(describe(stats))


@app.command("list")
@one_line_errors
def list_command() -> None:
    """The predictors installed on this machine."""
    from effbench.predict.predictor import Predictor, predictors_dir

    files = sorted(predictors_dir().glob("*.json")) if predictors_dir().is_dir() else []
    if not files:
        _say("no predictors: bench predictor build --backend openvino --device cpu (or bench predictor import FILE)")
        return
    for f in files:
        try:
            p = Predictor.read(f)
        except UsageError as e:
            _say(f"{f.name}: unreadable ({e})")
            continue
        ident = p.data["identity"]
        _say(
            f"{p.id}: {p.backend} {ident.get('backend_version')} on {p.device} ({ident.get('cpu')}), "
            f"{len(p.data['table'])} kernels; {p.accuracy_line()}"
        )


@app.command("export")
@one_line_errors
def export_command(
    file: Path = typer.Argument(..., help="Where to write the predictor file."),
    backend: str = typer.Option("openvino", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Write an installed predictor to a file a teammate can import."""
    predictor, _ = load_predictor(backend, device, None, check_machine=False)
    try:
        predictor.save(file)
    except OSError as e:
        raise UsageError(f"cannot write {file}: {e.strerror or e}") from None
    _say(f"wrote predictor {predictor.id} to {file}")


@app.command("import")
@one_line_errors
def import_command(
    file: Path = typer.Argument(..., help="A predictor file (bench predictor export)."),
    force: bool = typer.Option(False, "--force", help="Replace an installed predictor of the same backend and device."),
) -> None:
    """Install a predictor file, so `bench predict` uses it without the device."""
    from effbench.paths import write_confined
    from effbench.predict.predictor import Predictor, predictors_dir

    predictor = Predictor.read(file)  # its id checked: a plain name, the one its backend and device give
    name = f"{predictor.id}.json"
    if (predictors_dir() / name).exists() and not force:
        raise UsageError(
            f"a predictor for {predictor.backend} on {predictor.device} is installed already; "
            "pass --force to replace it"
        )
    try:
        write_confined(predictors_dir(), name, Path(file).read_bytes())
    except OSError as e:
        raise UsageError(f"cannot install {file} in {predictors_dir()}: {e.strerror or e}") from None
    _say(f"imported predictor {predictor.id} ({predictor.backend} on {predictor.device})")


def _minor(version: str | None) -> tuple[str, ...]:
    return tuple((version or "").split("-")[0].split(".")[:2])


def load_predictor(
    backend: str, device: str, path: Path | None, check_machine: bool = True, measuring: bool = False
) -> tuple[Predictor, list[str]]:
    """The predictor for (backend, device), and warnings; a mismatch of backend, device, CPU or the
    runtime's major.minor version is a one-line error (a patch version is a warning)."""
    from effbench.predict.build import check_target, identity, local_device
    from effbench.predict.predictor import Predictor, predictor_id, predictors_dir

    b = check_target(backend, device)
    if path is None:
        path = predictors_dir() / f"{predictor_id(b.name, device)}.json"
        if not path.exists():
            raise UsageError(
                f"no predictor for {b.name} on {device}: build one with `bench predictor build --backend "
                f"{b.name} --device {device}` or import a teammate's with `bench predictor import FILE`"
            )
    p = Predictor.read(path)
    if p.backend != b.name:
        raise UsageError(
            f"predictor {path} was built for {p.backend}, not {b.name}: use --backend {p.backend} or "
            f"build one for {b.name}"
        )
    if p.device != device:
        raise UsageError(
            f"predictor {path} was built for device {p.device!r}, not {device!r}: use --device "
            f"{p.device} or build one on {device}"
        )
    warnings = []
    if check_machine and (local_device(device) or measuring):
        here = identity(b)
        built = p.data["identity"]
        if built.get("cpu") != here["cpu"]:
            raise UsageError(
                f"predictor {p.id} was built on a {built.get('cpu')!r}, this machine has a "
                f"{here['cpu']!r}: build one here (bench predictor build)"
            )
        have, was = here["backend_version"], built.get("backend_version")
        if _minor(have) != _minor(was):
            raise UsageError(
                f"predictor {p.id} was built with {b.name} {was}, this machine has {have}: rebuild it "
                "(bench predictor build --fresh)"
            )
        if have != was:
            warnings.append(
                f"predictor {p.id} was built with {b.name} {was}, this machine has {have} (patch "
                "versions differ: predictions may be a little off)"
            )
    return p, warnings


@one_line_errors
def predict_command(
    model: str = typer.Option(..., "--model", "-m", help="A timm name, model card, .onnx file or factory."),
    backend: str = typer.Option("openvino", "--backend", "-b", help=BACKEND_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    batch: int = typer.Option(1, "--batch", help="Batch size (predictors are built at batch 1)."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="The thread count to predict for (must be the predictor's; default: the predictor's)."
    ),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Input height and width in pixels."),
    layers: int = typer.Option(12, "--layers", help="How many of the slowest kernels to list."),
    predictor_file: Optional[Path] = typer.Option(
        None, "--predictor", help="A predictor file instead of the installed one."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
) -> None:
    """Predict a model's latency on a device from its predictor: the whole, an interval, per kernel."""
    from effbench.predict.build import zoo_model

    if batch != 1:
        raise UsageError("predictors are built at batch 1: predict with --batch 1 (or measure with bench run)")
    if layers < 0:
        raise UsageError("--layers must be 0 or more")
    predictor, warnings = load_predictor(backend, device, predictor_file)
    built_threads = predictor.data["identity"].get("threads")
    if threads is not None and threads != built_threads:
        raise UsageError(
            f"predictor {predictor.id} predicts {built_threads or 'default'} thread(s), not {threads}: "
            f"build one with `bench predictor build --threads {threads}`"
        )
    m = zoo_model(model, input_size)
    pred = predictor.predict(m.kernels)
    refusal = pred.refusal(model, predictor.id)
    if refusal:
        raise UsageError(refusal)
    partial = pred.unknown_warning(m.name)
    if partial:
        warnings = [partial, *warnings]
    if as_json:
        out = {
            "model": m.name,
            "input_shape": m.input_shape,
            "backend": predictor.backend,
            "device": predictor.device,
            "predictor": predictor.id,
            "validation": {k: v for k, v in (predictor.validation or {}).items() if k not in ("results", "failed")},
            "warnings": warnings,
            **pred.to_dict(),
        }
        console.print_json(json.dumps(out))
        return
    for w in warnings:
        _say(f"warning: {w}")
    counts = {s: sum(kp.source == s for kp in pred.kernels) for s in ("table", "regressor", "unknown")}
    _say(
        f"{m.name} {'x'.join(map(str, m.input_shape))} on {predictor.backend}/{predictor.device}, "
        f"{built_threads or 'default'} thread(s): predicted "
        f"{pred.ms:.3f} ms (90% interval {pred.low_ns / 1e6:.3f}–{pred.high_ns / 1e6:.3f} ms)"
    )
    _say(
        f"  kernels {pred.kernel_sum_ns / 1e6:.3f} ms + per-inference overhead {pred.overhead_ns / 1e6:.3f} ms; "
        f"{len(pred.kernels)} kernels: {counts['table']} measured in the table, {counts['regressor']} regressed, "
        f"{counts['unknown']} unknown"
    )
    if pred.unknown:
        u = pred.unknown
        _say(
            f"  unknown: {u['kernels']} kernel(s) of operators no kernel model covers ({', '.join(u['ops'])}), "
            f"{u['flops_share']:.1%} of the FLOPs: their share of the time is not in the prediction"
        )
    _say(f"  predictor: {predictor.accuracy_line()}")
    ranked = sorted(((kp.ns, kp) for kp in pred.kernels if kp.ns), key=lambda nk: -nk[0])[:layers]
    if ranked:
        from rich.table import Table

        t = Table(title=f"slowest {len(ranked)} kernels")
        for col in ("type", "configuration", "first node", "ms", "share", "from"):
            t.add_column(col, justify="right" if col in ("ms", "share") else "left")
        for ns, kp in ranked:
            t.add_row(
                kp.kernel.type,
                kp.kernel.describe(),
                kp.kernel.nodes[0][-48:],
                f"{ns / 1e6:.4f}",
                f"{ns / pred.total_ns:.1%}",
                kp.source,
            )
        console.print(t)
