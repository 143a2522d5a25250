"""`bench models`: the model cards."""

from __future__ import annotations

import json

import typer

from effbench.console import console
from effbench.errors import UsageError


def models_command(fmt: str = typer.Option("table", "--format", help="table | json")):
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
