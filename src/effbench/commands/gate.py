"""CLI: `bench baseline save|show` and `bench gate`. The core CLI mounts these:

    app.add_typer(baseline_app, name="baseline")
    app.command("gate")(gate_command)

Exit codes: 0 no regression, 1 regression (or inconclusive with --fail-on inconclusive),
2 usage or input error, always reported as one line on stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from effbench.commands.options import DbOption, TagFilterOption
from effbench.console import console, one_line_errors
from effbench.errors import UsageError
from effbench.gate import baseline as baselines
from effbench.harness.sink import write_file

# The statistics (scipy, about a second) load inside the commands: the core CLI imports this
# module on every start.

FAIL_ON = ("regression", "inconclusive")


def parse_threshold(text: str) -> float:
    """'5%', '5' or '0.05' -> 0.05, as every percentage option of the CLI reads."""
    from effbench.harness.config import parse_percent

    try:
        value = parse_percent(text)
    except ValueError:
        value = None
    if value is None:
        raise UsageError(f"--threshold '{text}' is not a number: write e.g. 5% or 0.05")
    return value


def parse_points(text: str) -> float:
    """--max-accuracy-drop: top-1 percentage points, '0.5' or '0.5pt' (a '%' reads as points too)."""
    raw = text.strip().lower().removesuffix("pt").removesuffix("points").removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"--max-accuracy-drop '{text}' is not a number: write top-1 points, e.g. 0.5") from None
    if not 0 <= value < 100:
        raise UsageError(f"--max-accuracy-drop {text}: give top-1 points between 0 and 100, e.g. 0.5")
    return value


baseline_app = typer.Typer(
    help="Save and show baselines: committed snapshots that `bench gate` compares against.",
    no_args_is_help=True,
)

DIR_HELP = "Folder where a bare NAME lives as NAME.json (a path works in place of NAME)."


@baseline_app.command("save")
@one_line_errors
def save_command(
    name: str = typer.Argument(..., help="Baseline name (saved as <dir>/<NAME>.json) or a .json path."),
    from_file: Optional[Path] = typer.Option(None, "--from", help="Results JSON from `bench run --out`."),
    from_db: bool = typer.Option(False, "--from-db", help="Take the newest record per cell from the store."),
    db: DbOption = None,
    model: Optional[str] = typer.Option(None, "--model", help="Only this model (with --from-db)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Only this backend (with --from-db)."),
    device: Optional[str] = typer.Option(None, "--device", help="Only this device (with --from-db)."),
    tag: TagFilterOption = None,
    directory: Path = typer.Option(Path(baselines.DEFAULT_DIR), "--dir", help=DIR_HELP),
) -> None:
    """Snapshot results (raw samples, statistics, environment) into a baseline file."""
    from effbench.gate.cells import newest_cells, pooled_cells
    from effbench.gate.sources import describe, read_db_records, read_records_file

    wanted: dict[str, str | list[str] | None] = dict(model=model, backend=backend, device=device, tag=tag)
    filters = {k: v for k, v in wanted.items() if v}
    if (from_file is None) == (not from_db):
        raise UsageError("give exactly one source: --from FILE.json or --from-db [--db URL --tag ...]")
    if from_file is not None:
        if filters or (db and db != os.environ.get("EFFBENCH_DB")):  # a store in the environment is no --db
            raise UsageError("--db, --model, --backend, --device and --tag go with --from-db, not --from")
        cells, source = pooled_cells(read_records_file(from_file)), f"results file {from_file}"
    else:
        cells, source = newest_cells(read_db_records(db, filters)), describe(filters, db)
    if not cells:
        raise UsageError(f"no results in {source}")
    path = baselines.save(name, cells, directory=directory, source=source)
    not_ok = [c.label for c in cells if c.status != "ok"]
    if not_ok:
        typer.echo(f"note: {len(not_ok)} cells have no samples ({', '.join(not_ok)})", err=True)
    typer.echo(f"saved baseline '{path.stem}' with {len(cells)} cells to {path}")


@baseline_app.command("show")
@one_line_errors
def show_command(
    name: str = typer.Argument(..., help="Baseline name or .json path."),
    directory: Path = typer.Option(Path(baselines.DEFAULT_DIR), "--dir", help=DIR_HELP),
) -> None:
    """Print a baseline's cells as a table."""
    from effbench.gate.render import print_baseline

    print_baseline(baselines.load(name, directory), console)


@one_line_errors
def gate_command(
    baseline: str = typer.Option(
        ..., "--baseline", help="Baseline name or .json path, or 'db:tag=NAME,...' from the store."
    ),
    current: str = typer.Option(
        ...,
        "--current",
        help="Results JSON file, or 'db' / 'db:tag=NAME,model=...' for the newest record per cell in the store.",
    ),
    threshold: str = typer.Option("5%", "--threshold", help="Smallest change that counts, e.g. 5% or 0.05."),
    metric: str = typer.Option("latency", "--metric", help="latency, throughput, memory or energy."),
    alpha: float = typer.Option(0.01, "--alpha", help="Significance level of the Mann-Whitney (and McNemar) test."),
    max_accuracy_drop: str = typer.Option(
        "0.5",
        "--max-accuracy-drop",
        help="Top-1 points a cell may lose (against the baseline, or int8 against its fp32 reference) before a "
        "significant drop is an accuracy regression.",
    ),
    fail_on: str = typer.Option("regression", "--fail-on", help="regression, or inconclusive to fail on those too."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the Markdown report here (- for stdout)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the machine-readable report here."),
    db: DbOption = None,
    directory: Path = typer.Option(Path(baselines.DEFAULT_DIR), "--dir", help=DIR_HELP),
) -> int:
    """Compare a run against a baseline; exit 1 on a regression, 2 on bad input."""
    from effbench.gate.render import print_report, to_json, to_markdown
    from effbench.gate.sources import load_cells, parse_db_spec
    from effbench.gate.verdict import compare, match

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r}: choose one of {', '.join(FAIL_ON)}")
    limit = parse_threshold(threshold)
    points = parse_points(max_accuracy_drop)
    if parse_db_spec(baseline) is not None:  # the team store's newest record per cell
        base_cells, base_source = load_cells(baseline, db)
    else:
        base = baselines.load(baseline, directory)
        base_cells, base_source = base.cells, str(base.path)
    cells, source = load_cells(current, db)
    if not any(b is not None and c is not None for b, c, _ in match(base_cells, cells)):
        raise UsageError(
            f"nothing compared: baseline {base_source} ({len(base_cells)} cell(s)) and {source} "
            f"({len(cells)} cell(s)) share no cell; check --current, its filters and the baseline"
        )
    report = compare(
        base_cells,
        cells,
        metric=metric,
        threshold=limit,
        alpha=alpha,
        baseline=base_source,
        current=source,
        max_accuracy_drop=points,
    )

    text = to_markdown(report, fail_on)
    if markdown is None or str(markdown) == "-":
        typer.echo(text, nl=False)
    else:
        write_file(markdown, text, "markdown report")
        print_report(report, console, fail_on)
    if json_out is not None:
        write_file(json_out, to_json(report, fail_on) + "\n", "JSON report")
    return report.exit_code(fail_on)
