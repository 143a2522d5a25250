"""`bench models`: the model cards."""

from __future__ import annotations

import json

from typing_extensions import Annotated

from effbench.commands.options import format_option
from effbench.console import console


def models_command(fmt: Annotated[str, format_option("table", "json")] = "table") -> None:
    """List the model cards (reported top-1, params and MACs with their sources)."""
    from rich.table import Table

    from effbench.models.registry import list_cards

    cards = list_cards()
    if fmt == "json":
        print(json.dumps([c.to_dict() for c in cards], indent=1))
        return
    t = Table(title="model cards (any timm model also works as timm:<name>)")
    for col in ("name", "family", "input", "top-1 %", "params M", "MACs M", "source"):
        t.add_column(col)
    for c in cards:
        t.add_row(
            c.name, c.family, "x".join(map(str, c.input_shape)), str(c.top1), str(c.params_m), str(c.macs_m), c.source
        )
    console.print(t)
