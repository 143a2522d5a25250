"""`bench site build`: data files first (one JSON per cell history, keyed by configuration hash, and an
index), then the pages generated from the same histories, the regressions feed and the local assets."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from effbench.errors import UsageError
from effbench.harness.result import Result
from effbench.harness.store import Store, parse_since
from effbench.reports.common import script_json
from effbench.reports.data import to_row
from effbench.reports.html import report_css
from effbench.site.changes import DEFAULT_THRESHOLD, find_changes
from effbench.site.feed import atom, regressions
from effbench.site.history import cell_key, histories
from effbench.site.layout import PLOTLY, cell_path, render
from effbench.site.pages import SITE_PAGES, SiteContext

MARKER = ".effbench-site"  # a directory holding it was written by `bench site build` (its old pages may go)
OWNED = ("data", "cells", "devices", "models", "assets")


@dataclass
class BuildSummary:
    path: Path
    results: int
    cells: int
    pages: int
    real_changes: int
    regressions: int
    largest_page: tuple[str, int]  # (relative path, bytes)


def check_out_dir(path: Path) -> None:
    """DIR must be a directory we can write (created when missing): else one line, exit 2, before any work."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} is a file, not a directory: pass a directory for the site, e.g. {path}-site")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write the site to {path}: {e.strerror or e}; pass a writable directory") from None


def _write_bytes(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _write(path: Path, text: str) -> int:
    return _write_bytes(path, text.encode("utf-8"))


def _copy_asset(out: Path, name: str) -> None:
    _write_bytes(out / "assets" / name, resources.files("effbench.site").joinpath(f"assets/{name}").read_bytes())


def build_site(
    out: Path, db: str | None = None, since: str | None = None, threshold: float = DEFAULT_THRESHOLD
) -> BuildSummary:
    since_at = parse_since(since)
    check_out_dir(out)
    store = Store(db, must_exist=True)
    results = store.results(since=since_at)  # a record of a newer record schema: one line, exit 2

    cells = histories(results)
    changes = {c.key: find_changes(c, threshold) for c in cells}
    newest: dict[str, Result] = {}
    for r in results:  # newest first: the first result of a cell is its newest
        newest.setdefault(cell_key(r), r)
    ctx = SiteContext(
        cells=cells,
        changes=changes,
        latest={k: to_row(r) for k, r in newest.items()},
        threshold=threshold,
        source=str(store.display_url) + (f" since {since_at}" if since_at else ""),
    )

    if (out / MARKER).exists():
        for name in OWNED:
            shutil.rmtree(out / name, ignore_errors=True)
    (out / MARKER).write_text("written by bench site build; its pages and data are replaced on each build\n")
    now = _dt.datetime.now(_dt.timezone.utc)
    generated = now.strftime("%Y-%m-%d %H:%M UTC")

    # data first: the pages are generated from the same histories
    index = []
    for c in cells:
        latest = c.latest
        real = [ch for ch in changes[c.key] if ch.real]
        index.append(
            {
                **c.describe(),
                "file": f"data/cells/{c.key}.json",
                "page": cell_path(c.key),
                "runs": len(c.points),
                "latest": latest.to_json() if latest else None,
                "changes": len(changes[c.key]),
                "real_changes": len(real),
            }
        )
        doc = {
            **c.describe(),
            "settings": c.settings,
            "points": c.points_json,
            "changes": [ch.to_json() for ch in changes[c.key]],
        }
        _write(out / "data" / "cells" / f"{c.key}.json", json.dumps(doc, separators=(",", ":"), default=str))
        # the same cell's summary as a script: a page opened from disk may load a script, never fetch JSON
        _write(
            out / "data" / "compare" / f"{c.key}.js",
            f"(window.effbenchCells = window.effbenchCells || {{}})[{script_json(c.key)}] = "
            f"{script_json(c.summary())};",
        )
    meta = {"generated": now.isoformat(timespec="seconds"), "store": store.display_url, "since": since_at}
    _write(out / "data" / "index.json", json.dumps({**meta, "cells": index}, separators=(",", ":"), default=str))

    regs = regressions(cells, changes)
    _write(out / "regressions.json", json.dumps({**meta, "threshold": threshold, "regressions": regs}, indent=1))
    site_id = "urn:effbench-site:" + hashlib.sha1(str(store.display_url).encode()).hexdigest()[:16]
    _write(out / "regressions.xml", atom(regs, now, site_id))

    sizes: dict[str, int] = {}
    plots = False
    for publisher in SITE_PAGES:
        for page in publisher.publish(ctx):
            sizes[page.path] = _write(out / page.path, render(page, generated))
            plots = plots or bool(page.figures)
    _write(out / "assets" / "report.css", report_css())
    _copy_asset(out, "site.css")
    _copy_asset(out, "site.js")
    if plots:  # plotly.js's basic bundle (scatter, bar, pie: what the shared views draw), 1.2 MB, not 4.8
        for name in (PLOTLY, "plotly-basic.LICENSE.txt"):
            (out / "assets" / name).write_bytes(
                resources.files("effbench.site").joinpath(f"assets/{name}").read_bytes()
            )
    largest = max(sizes.items(), key=lambda kv: kv[1])
    return BuildSummary(
        path=out,
        results=len(results),
        cells=len(cells),
        pages=len(sizes),
        real_changes=sum(1 for chs in changes.values() for ch in chs if ch.real),
        regressions=len(regs),
        largest_page=largest,
    )
