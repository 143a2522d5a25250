"""`bench claims list | show | verify`. The core CLI mounts it: app.add_typer(claims_app, name="claims").

Exit codes: 0 when verify ran (whatever the verdicts) unless --fail-on says otherwise (then 1),
2 for bad input (unknown claim, malformed card, unknown backend or device, a model effbench cannot
build), always as one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer
from typing_extensions import Annotated

from effbench.commands.options import DbOption, format_option
from effbench.console import console, one_line_errors
from effbench.errors import UsageError
from effbench.harness.run_options import parse_opts
from effbench.harness.sink import write_file

if TYPE_CHECKING:
    from effbench.claims.library import Library
    from effbench.claims.plan import Plan
    from effbench.claims.verify import Outcome

claims_app = typer.Typer(
    help="Published speed claims (claim cards): list them, show one, re-measure one here side by side.",
    no_args_is_help=True,
)

DIR_HELP = "Also read claim cards from this folder or file (repeatable; EFFBENCH_CLAIMS_DIR takes a path list too)."
FAIL_ON = ("never", "not-holding", "inconclusive")


def _library(dirs: list[Path] | None) -> Library:
    from effbench.claims.library import load_library

    return load_library(dirs or [])


def _unbuildable(lib: Library) -> dict[str, list[tuple[str, str]]]:
    from effbench.claims.library import unbuildable_models

    return {e.name: unbuildable_models(e.claim) for e in lib}


@claims_app.command("list")
@one_line_errors
def list_command(
    claims_dir: Optional[List[Path]] = typer.Option(None, "--claims-dir", help=DIR_HELP),
    fmt: Annotated[str, format_option("table", "json")] = "table",
) -> None:
    """Every claim card (shipped, from entry points and from --claims-dir) and whether effbench can build its models."""
    lib = _library(claims_dir)
    missing = _unbuildable(lib)
    if fmt == "json":
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "origin": e.origin,
                        "paper": e.paper.model_dump(),
                        "claim": e.claim.model_dump(),
                        "published_ratio": e.claim.published_ratio,
                        "statement": e.claim.statement,
                        "unbuildable": [{"model": m, "reason": w} for m, w in missing[e.name]],
                    }
                    for e in lib
                ],
                indent=1,
            )
        )
        return
    from effbench.claims.render import list_table

    console.print(list_table(lib, missing))


@claims_app.command("show")
@one_line_errors
def show_command(
    name: str = typer.Argument(..., help="Claim name (`bench claims list`)."),
    claims_dir: Optional[List[Path]] = typer.Option(None, "--claims-dir", help=DIR_HELP),
) -> None:
    """One claim card: the paper's words, the published ratio and its source, settings, verdict rule."""
    from effbench.claims.library import unbuildable_models
    from effbench.claims.render import show_card

    entry = _library(claims_dir).get(name)
    show_card(console, entry, unbuildable_models(entry.claim))


def _exit_code(outcomes: list[Outcome], fail_on: str) -> int:
    from effbench.claims.verdict import DOES_NOT_HOLD, FAILED, HOLDS

    verdicts = {o.verdict.verdict for o in outcomes if o.verdict is not None}  # verify() judges each
    if fail_on == "not-holding":
        return 1 if verdicts & {DOES_NOT_HOLD, FAILED} else 0
    if fail_on == "inconclusive":
        return 1 if verdicts - {HOLDS} else 0
    return 0


@claims_app.command("verify")
@one_line_errors
def verify_command(
    names: List[str] = typer.Argument(..., help="Claim name(s) (`bench claims list`)."),
    backend: Optional[List[str]] = typer.Option(
        None,
        "--backend",
        "-b",
        help="Runtime (repeatable). Default: the published one where it runs here, "
        "else onnxruntime, openvino and torch.",
    ),
    device: Optional[List[str]] = typer.Option(
        None, "--device", help="Device (repeatable). Default: cuda:0 for a GPU claim where a GPU is usable, else cpu."
    ),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="A B rounds (order flipped each round); samples are pooled per side."
    ),
    duration: float = typer.Option(2.0, "--duration", min=0.01, help="Minimum measuring seconds per cell."),
    warmup: float = typer.Option(0.5, "--warmup", min=0.0, help="Warm-up seconds per cell."),
    warmup_iters: int = typer.Option(5, "--warmup-iters", min=0, help="Minimum warm-up iterations per cell."),
    min_iters: int = typer.Option(
        20, "--min-iters", min=1, help="Minimum iterations per cell (raised so each side pools >= 60)."
    ),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch size instead of the published one."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="Runtime threads instead of the published ones."
    ),
    tolerance: Optional[str] = typer.Option(
        None, "--tolerance", help="Tolerance instead of the card's, e.g. 10% or 0.1."
    ),
    opt: Optional[List[str]] = typer.Option(
        None, "--opt", help="Backend option KEY=VALUE for every cell (repeatable)."
    ),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Compare outputs with the PyTorch reference."),
    timeout: float = typer.Option(900.0, "--timeout", min=1.0, help="Kill a cell's worker after this many seconds."),
    fail_on: str = typer.Option(
        "never",
        "--fail-on",
        help="never | not-holding (exit 1 on does not hold or failed) "
        "| inconclusive (exit 1 unless every verdict holds).",
    ),
    claims_dir: Optional[List[Path]] = typer.Option(None, "--claims-dir", help=DIR_HELP),
    db: DbOption = None,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the verdicts as JSON here."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
) -> int:
    """Re-measure a claim here: A and B interleaved per runtime and device, the measured ratio with a bootstrap
    95% CI, and a verdict (holds / does not hold / inconclusive / failed). Results are stored tagged claim:NAME."""
    from effbench.claims.plan import Overrides, Timing, claim_tag, plan_claims
    from effbench.claims.render import verify_table
    from effbench.claims.verify import verify
    from effbench.harness.config import parse_percent
    from effbench.harness.sink import ResultSink, check_out_writable
    from effbench.harness.store import Store

    if fail_on not in FAIL_ON:
        raise UsageError(f"unknown --fail-on {fail_on!r}; use {', '.join(FAIL_ON)}")
    try:
        tol = parse_percent(tolerance)
    except ValueError:
        raise UsageError(f"--tolerance {tolerance!r} is not a number: write e.g. 10% or 0.1") from None
    if tol is not None and not 0 <= tol < 1:
        raise UsageError(f"--tolerance {tolerance} must be between 0 and 1 (e.g. 10% or 0.1)")
    check_out_writable(json_out, "--json")
    lib = _library(claims_dir)
    entries = [lib.get(n) for n in dict.fromkeys(names)]
    timing = Timing(
        rounds=rounds,
        warmup_s=warmup,
        warmup_iters=warmup_iters,
        duration_s=duration,
        min_iters=min_iters,
        timeout_s=timeout,
    )
    over = Overrides(batch=batch, threads=threads, tolerance=tol, options=parse_opts(opt), parity=parity)
    plans = {e.name: plan_claims(e, backend, device, timing, over) for e in entries}  # all input checked first
    for ps in plans.values():
        _check_first_cells(ps)

    sink = ResultSink(None, Store(db), "bench claims verify")
    results: list[Any] = []
    code = 0
    for e in entries:
        ps = plans[e.name]
        cells = sum(len(p.cells) for p in ps)
        console.print(
            f"[bold]{e.name}[/]: {len(ps)} runtime/device pair(s) x {rounds} round(s) = {cells} cells "
            f"(interleaved A B, B A ...), stored with tag {claim_tag(e.name)}"
        )
        try:
            outcomes = verify(ps, sink, isolate=isolate)
        except KeyboardInterrupt:
            sink.summary()  # what finished is stored (or spooled, with its import command)
            console.print(
                f"\n[yellow]interrupted:[/] {len(sink.records)} finished cell(s) kept, tag {claim_tag(e.name)}"
            )
            raise typer.Exit(130) from None
        console.print(verify_table(outcomes))
        code = max(code, _exit_code(outcomes, fail_on))
        results.extend(o.to_dict() for o in outcomes)
        console.print(f"[dim]report: bench report --tag {claim_tag(e.name)}[/]")
    code = max(code, sink.summary())  # 1 when a result could only be spooled
    if json_out:
        write_file(json_out, json.dumps(results, indent=1, default=str))
    return code


def _check_first_cells(plans: list[Plan]) -> None:
    """Unknown model, backend, precision: fail before any work, as `bench run` does."""
    from effbench.harness.prepare import check_cell

    for p in plans:
        for side in ("A", "B"):
            check_cell(next(c for s, c in p.cells if s == side))
