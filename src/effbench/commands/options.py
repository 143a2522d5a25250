"""Options shared by many commands, declared once: `def cmd(db: DbOption = None, out: OutOption = None)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from typing_extensions import Annotated

from effbench.errors import UsageError

DbOption = Annotated[
    Optional[str],
    typer.Option("--db", envvar="EFFBENCH_DB", help="Results database (path or SQLAlchemy URL)."),
]
OutOption = Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the records to a JSON file.")]
TagOption = Annotated[Optional[str], typer.Option("--tag", help="Label stored with the results.")]
OptOption = Annotated[
    Optional[List[str]],
    typer.Option(
        "--opt",
        help="Backend option KEY=VALUE (repeatable), typed per backend: `bench backends --options NAME` lists them.",
    ),
]
IsolateOption = Annotated[bool, typer.Option("--isolate/--in-process", help="Run each cell in its own worker process.")]
StoreOption = Annotated[bool, typer.Option("--store/--no-store", help="Write results to the database.")]
TagFilterOption = Annotated[
    Optional[List[str]], typer.Option("--tag", help="Only results stored with this tag (repeatable).")
]


def format_option(*choices: str, short: bool = False, aliases: dict[str, str] | None = None, help: str = "") -> Any:
    """--format with the given choices (the first is the default); use as
    `fmt: Annotated[str, format_option("table", "json")] = "table"`. The value reaches the command
    checked and lower-cased (an alias replaced by its choice); an unknown one is bad input: one line
    naming the choices, exit 2, before the command runs."""
    names = ("--format", "-f") if short else ("--format",)
    return typer.Option(*names, help=help or " | ".join(choices), callback=_format_checker(choices, aliases or {}))


def _format_checker(choices: tuple[str, ...], aliases: dict[str, str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        key = value.strip().lower()
        key = aliases.get(key, key)
        if key not in choices:
            use = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            raise UsageError(f"unknown --format {value!r}; use {use}")
        return key

    return check
