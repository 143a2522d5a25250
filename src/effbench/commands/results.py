"""`bench results`: list stored results; `bench results import FILE` adds spooled ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from effbench.commands.options import DbOption, format_option
from effbench.console import console, error_line, one_line_errors, result_table
from effbench.errors import EffbenchError

app = typer.Typer(
    help="Stored results: list them, import spooled ones.", no_args_is_help=False, invoke_without_command=True
)


@app.callback()
def results(
    ctx: typer.Context,
    db: DbOption = None,
    fmt: Annotated[str, format_option("table", "csv", "json")] = "table",
    model: Optional[str] = typer.Option(None, "--model"),
    backend: Optional[str] = typer.Option(None, "--backend"),
    device: Optional[str] = typer.Option(None, "--device"),
    tag: Optional[str] = typer.Option(None, "--tag"),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date or time, e.g. 2026-11-01"),
    limit: int = typer.Option(50, "--limit", help="Newest N results (0: all)."),
) -> None:
    """List stored results (`bench results import FILE` adds spooled ones)."""
    if ctx.invoked_subcommand is not None:
        return
    from effbench.harness.store import Store, parse_since, results_frame

    if limit < 0:
        from effbench.harness.run_options import bad_value

        raise bad_value("--limit", limit, "must be 0 (all) or more")
    since_iso = parse_since(since)
    if backend:
        from effbench.backends.registry import canonical_name

        try:
            backend = canonical_name(backend)
        except EffbenchError:
            pass  # a name as typed: records of unregistered backends keep theirs
    store = Store(db, must_exist=True)
    found = store.results(model=model, backend=backend, device=device, tag=tag, since=since_iso, limit=limit)
    if fmt == "json":
        print(json.dumps([r.to_dict() for r in found], indent=1, default=str))
    elif fmt == "csv":
        sys.stdout.write(results_frame(found).to_csv(index=False))
    elif not found:
        console.print("no stored results match (run `bench run ...` first, or check --db and the filters)")
    else:
        rows = [r.to_dict() for r in reversed(found)]
        console.print(result_table(rows, title=f"{len(found)} stored result(s)"))


@app.command("import")
@one_line_errors
def results_import(
    file: Path = typer.Argument(..., help="A spool file (.jsonl) or a `bench run --out` file (.json)."),
    db: DbOption = None,
) -> int:
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
