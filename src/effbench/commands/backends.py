"""`bench backends`: every backend, usable here or why not, and each one's --opt options."""

from __future__ import annotations

from typing import Optional

import typer

from effbench.console import console


def backends_command(
    device: str = typer.Option("cpu", "--device", help="Check usability on this device."),
    options: Optional[str] = typer.Option(None, "--options", help="List this backend's --opt options."),
) -> None:
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
