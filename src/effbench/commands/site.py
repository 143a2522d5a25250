"""`bench site build DIR` and `bench site serve DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from effbench.commands.options import DbOption
from effbench.console import console
from effbench.site.build import build_site
from effbench.site.changes import DEFAULT_THRESHOLD
from effbench.site.serve import HOST, make_server

app = typer.Typer(
    help="A static results site: pages per device, model and cell history, change points, a regressions feed.",
    no_args_is_help=True,
)


@app.command("build")
def build_command(
    out: Path = typer.Argument(..., help="Directory to write the site into (created when missing)."),
    db: DbOption = None,
    since: Optional[str] = typer.Option(None, "--since", help="Only results from this ISO date or time on."),
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD * 100,
        "--threshold",
        min=0.0,
        max=1000.0,
        help="A change is real, and a slowdown a regression, only when its 95% CI clears this many percent.",
    ),
) -> None:
    """Write a static site (no server, no network request when opened): data/ (one JSON per cell history,
    keyed by configuration hash, plus an index), then the pages, regressions.json and regressions.xml."""
    s = build_site(out, db=db, since=since, threshold=threshold / 100)
    if not s.cells:
        what = f"no results since {since}" if since else "no results yet"
        console.print(f"wrote {out}: the store holds {what} (the site says so)", highlight=False)
        return
    console.print(
        f"wrote {out}: {s.results} result(s), {s.cells} cell histories, {s.pages} page(s), "
        f"{s.real_changes} real change(s), {s.regressions} regression(s); largest page {s.largest_page[0]} "
        f"({s.largest_page[1] / 1e6:.2f} MB). Open {out / 'index.html'} or `bench site serve {out}`.",
        highlight=False,
        soft_wrap=True,
    )


@app.command("serve")
def serve_command(
    out: Path = typer.Argument(..., help="A directory written by `bench site build`."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
) -> None:
    """Serve a built site on 127.0.0.1 for local viewing (Ctrl-C stops)."""
    server = make_server(out, port)
    console.print(f"serving {out} at http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
