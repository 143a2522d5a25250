"""`bench report`: the HTML dashboard, a Markdown summary or the flat CSV of stored results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from effbench.commands.options import DbOption, TagFilterOption, format_option
from effbench.harness.sink import write_file

DEFAULT_HTML = Path("reports/index.html")
FORMATS = ("html", "md", "csv")


def report_command(
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help=f"Output file. html: default {DEFAULT_HTML}; md and csv: standard output unless given.",
    ),
    fmt: Annotated[
        str,
        format_option(
            *FORMATS,
            short=True,
            aliases={"markdown": "md"},
            help="html (dashboard) | md (PR-comment summary) | csv (flat table).",
        ),
    ] = "html",
    db: DbOption = None,
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Only these models (repeatable)."),
    backend: Optional[List[str]] = typer.Option(
        None, "--backend", "-b", help="Only these backends (repeatable; aliases work)."
    ),
    device: Optional[List[str]] = typer.Option(None, "--device", help="Only these devices (repeatable)."),
    tag: TagFilterOption = None,
    since: Optional[str] = typer.Option(
        None, "--since", help="Only results from this ISO date or time on, e.g. 2026-11-01."
    ),
    reference_backend: Optional[str] = typer.Option(
        None,
        "--reference-backend",
        help="Backend the matrix computes speed-ups against (default: torch if present, else the alphabetically "
        "first).",
    ),
    title: str = typer.Option("effbench report", "--title", help="Title of the HTML page."),
) -> None:
    """Turn stored results into an offline HTML dashboard (speed-accuracy, roofline, efficiency gap, where the
    time goes, backend matrix, stability, environment), a Markdown summary or a CSV.

    No stored result, or none matching the filters: one line and exit code 1.
    """
    from effbench.console import console
    from effbench.reports.data import Query, load_results

    query = Query(db=db, models=model, backends=backend, devices=device, tags=tag, since=since)
    records = load_results(query)

    if fmt == "html":
        from effbench.reports.html import render_html

        text = render_html(records, query, reference_backend, title=title)
        path = out or DEFAULT_HTML
        write_file(path, text)
        size = path.stat().st_size / 1e6
        console.print(
            f"wrote {path} ({len(records)} result(s), {size:.1f} MB, works offline)", highlight=False, soft_wrap=True
        )
        return
    if fmt == "md":
        from effbench.reports.markdown import render_markdown

        text = render_markdown(records, query.describe())
    else:
        from effbench.reports.markdown import render_csv

        text = render_csv(records)
    if out:
        write_file(out, text)
        console.print(f"wrote {out} ({len(records)} result(s))", highlight=False, soft_wrap=True)
    else:
        sys.stdout.write(text)
