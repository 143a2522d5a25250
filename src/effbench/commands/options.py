"""Options shared by many commands, declared once: `def cmd(db: DbOption = None, out: OutOption = None)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from typing_extensions import Annotated

DbOption = Annotated[
    Optional[str],
    typer.Option("--db", envvar="EFFBENCH_DB", help="Results database (path or SQLAlchemy URL)."),
]
OutOption = Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the records to a JSON file.")]
TagOption = Annotated[Optional[str], typer.Option("--tag", help="Label stored with the results.")]
TagFilterOption = Annotated[
    Optional[List[str]], typer.Option("--tag", help="Only results stored with this tag (repeatable).")
]


def format_option(*choices: str, short: bool = False) -> Any:
    """--format with the given choices (the first is the default); use as
    `fmt: Annotated[str, format_option("table", "json")] = "table"`."""
    names = ("--format", "-f") if short else ("--format",)
    return typer.Option(*names, help=" | ".join(choices))
