"""regressions.json and the Atom feed regressions.xml: the real slowdowns beyond the threshold, newest first."""

from __future__ import annotations

import datetime as _dt
from typing import Any
from xml.sax.saxutils import escape

from effbench.site.changes import Change
from effbench.site.history import CellHistory
from effbench.site.layout import cell_path


def regressions(cells: list[CellHistory], changes: dict[str, list[Change]]) -> list[dict[str, Any]]:
    out = []
    for c in cells:
        for ch in changes.get(c.key, []):
            if ch.real and ch.ratio > 1:
                out.append({**c.describe(), "page": cell_path(c.key), **ch.to_json()})
    out.sort(key=lambda r: r["after"]["t"], reverse=True)
    return out


def _when(ts: str) -> str:
    """An RFC 3339 time (the store keeps UTC without an offset)."""
    if not ts:
        return "1970-01-01T00:00:00Z"
    return ts[:19] + "Z" if "+" not in ts[10:] and not ts.endswith("Z") else ts


def atom(items: list[dict[str, Any]], generated: _dt.datetime, site_id: str) -> str:
    updated = items[0]["after"]["t"] if items else generated.strftime("%Y-%m-%dT%H:%M:%S")
    entries = []
    for r in items:
        title = f"{r['model']} · {r['backend']} · {r['device']} · {r['precision']} · b{r['batch']}"
        pct = (r["ratio"] - 1) * 100
        summary = (
            f"{pct:+.1f}% (ratio {r['ratio']:.3f}, 95% CI {r['ci'][0]:.3f}–{r['ci'][1]:.3f}) between "
            f"{r['before']['t'][:16]} (commit {r['before']['commit'][:10] or '?'} {r['before']['tag']}) and "
            f"{r['after']['t'][:16]} (commit {r['after']['commit'][:10] or '?'} {r['after']['tag']}); {r['why']}"
        )
        entries.append(
            "<entry>"
            f"<id>{escape(site_id)}:{escape(r['key'])}:{escape(r['after']['id'])}</id>"
            f"<title>{escape(title)}: {pct:+.1f}%</title>"
            f"<updated>{escape(_when(r['after']['t']))}</updated>"
            f'<link rel="alternate" href="{escape(r["page"])}"/>'
            f"<summary>{escape(summary)}</summary>"
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{escape(site_id)}</id><title>effbench regressions</title>"
        f"<updated>{escape(_when(updated))}</updated>"
        "<author><name>effbench</name></author>"
        '<link rel="self" href="regressions.xml"/>' + "".join(entries) + "</feed>\n"
    )
