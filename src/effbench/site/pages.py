"""The site's pages, each a publisher (`publish(ctx) -> list[Page]`, the contract report views keep).

Overview, one page per device, per model and per cell history, and the regressions list. Model pages
place the report's own view publishers (speed-accuracy, precision, claims) over that model's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from effbench.harness.result import Result
from effbench.harness.stability_score import MIN_RUNS, Run, runs_stability
from effbench.reports.common import fmt_si, h
from effbench.reports.data import Row, mapping
from effbench.reports.publish import Publisher, ViewContext, publish_views, report_views
from effbench.site.changes import Change
from effbench.site.history import CellHistory
from effbench.site.layout import Page, cell_path, change_text, history_svg, median_ci, provenance, slug

MODEL_VIEWS = ["speed-accuracy", "precision", "prediction", "claims"]  # the report views a model page shows


@dataclass
class SiteContext:
    cells: list[CellHistory]
    changes: dict[str, list[Change]]  # cell key -> its change points, oldest first
    latest: dict[str, Row]  # cell key -> its newest result as a report row (the shared views draw these)
    threshold: float
    source: str  # the store, as displayed

    def last_real(self, key: str) -> Change | None:
        real = [c for c in self.changes.get(key, []) if c.real]
        return real[-1] if real else None


FILTERS = ("model", "device", "backend", "precision", "batch", "resolution")


def _attrs(cell: CellHistory) -> str:
    latest = cell.latest
    values = {**{k: cell.describe()[k] for k in FILTERS}, "t": latest.created_at if latest else ""}
    return " ".join(f'data-{k}="{h("" if v is None else v)}"' for k, v in values.items())


def filter_bar(cells: list[CellHistory]) -> str:
    """Selects for every filter (their state lives in the URL: site.js reads and writes it)."""
    parts = []
    for key in FILTERS:
        values = sorted({str(c.describe()[key]) for c in cells if c.describe()[key] is not None})
        options = "".join(f'<option value="{h(v)}">{h(v)}</option>' for v in values)
        parts.append(
            f'<label>{h(key)} <select data-filter="{key}"><option value="">all</option>{options}</select></label>'
        )
    parts.append('<label>from <input type="date" data-filter="from"></label>')
    parts.append('<label>to <input type="date" data-filter="to"></label>')
    return f'<form class="filters" onsubmit="return false">{"".join(parts)}</form>'


def cell_table(ctx: SiteContext, cells: list[CellHistory], root: str) -> str:
    head = "".join(
        f"<th>{h(c)}</th>"
        for c in (
            "model",
            "device",
            "backend",
            "precision",
            "batch",
            "res.",
            "latest median [95% CI]",
            "provenance",
            "runs",
            "last real change",
            "",
        )
    )
    body = []
    for c in cells:
        latest = c.latest
        change = ctx.last_real(c.key)
        cls = ("slower" if change.ratio > 1 else "faster") if change else ""
        status = "" if latest is None or latest.ok else f' <span class="status-bad">{h(latest.status)}</span>'
        body.append(
            f'<tr class="cell {cls}" data-key="{h(c.key)}" {_attrs(c)}>'
            f'<td><a href="{root}models/{h(slug(c.model))}.html">{h(c.model)}</a></td>'
            f'<td><a href="{root}devices/{h(slug(c.device))}.html">{h(c.device)}</a></td>'
            f"<td>{h(c.backend)}</td><td>{h(c.precision_ran if c.precision_ran != c.precision else c.precision)}</td>"
            f'<td class="num">{h(c.batch)}</td><td class="num">{h(c.resolution or "")}</td>'
            f'<td class="num">{h(median_ci(latest))}{status}</td>'
            f'<td class="prov">{h(provenance(latest)) if latest else "–"}</td>'
            f'<td class="num">{len(c.points)}</td>'
            f'<td class="{cls}">{h(change_text(change)) if change else "none"}</td>'
            f'<td><a href="{root}{cell_path(c.key)}">history</a></td></tr>'
        )
    return (
        f'<div class="table-wrap"><table class="data cells"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        '<p class="caption shown"></p>'
    )


class OverviewPage(Publisher[SiteContext, Page]):
    id = "overview"

    def publish(self, ctx: SiteContext) -> list[Page]:
        if not ctx.cells:
            body = (
                f'<p class="note warn">No results in {h(ctx.source)} yet: run <code>bench run ...</code> or '
                "<code>bench sweep ...</code>, then <code>bench site build</code> again.</p>"
            )
            return [Page("index.html", "results", body, kind="overview")]
        devices = sorted({c.device for c in ctx.cells})
        models = sorted({c.model for c in ctx.cells})
        backends = sorted({c.backend for c in ctx.cells})
        real = sum(1 for c in ctx.cells if ctx.last_real(c.key))
        links = lambda xs, d: ", ".join(f'<a href="{d}/{h(slug(x))}.html">{h(x)}</a>' for x in xs)
        body = (
            f'<p class="summary">{len(ctx.cells)} cell(s) · {len(devices)} device(s): {links(devices, "devices")} · '
            f"{len(models)} model(s): {links(models, 'models')} · {len(backends)} backend(s): "
            f"{h(', '.join(backends))} · {real} cell(s) whose last change is real (coloured: red slower, green "
            f"faster; a change is real when the gate's test confirms it beyond {ctx.threshold:.0%}).</p>"
            + filter_bar(ctx.cells)
            + '<div id="compare" class="compare"></div>'
            + cell_table(ctx, ctx.cells, "")
            + '<p class="caption">Compare two cells: add <code>?a=KEY&amp;b=KEY</code> (the keys are the cells\' '
            "configuration hashes); every difference in runtime version, precision, device or settings is "
            "listed.</p>"
        )
        return [Page("index.html", "results", body, kind="overview")]


def _fingerprint(r: Result) -> list[tuple[str, str]]:
    env = r.env
    keys = ("cpu_model", "logical_cpus", "memory_gib", "os_name", "os", "machine", "governor", "hostname")
    out = [(k, str(env[k])) for k in keys if env.get(k) not in (None, "")]
    gpu = env.get("gpu")
    if isinstance(gpu, dict) and gpu.get("name"):
        out.append(("gpu", str(gpu.get("name"))))
    return out


def _peaks(r: Result) -> list[tuple[str, str]]:
    a = mapping(r.extra.get("analysis"))
    if not a:
        return []
    out = [("catalog entry", str(a.get("device_spec") or "?"))]
    if a.get("peak_flops_per_s"):
        out.append(
            (f"peak {a.get('precision', '')}", f"{fmt_si(a['peak_flops_per_s'], 'FLOP/s')} ({a.get('peak_source')})")
        )
    if a.get("bandwidth_bytes_per_s"):
        out.append(("memory bandwidth", f"{fmt_si(a['bandwidth_bytes_per_s'], 'B/s')} ({a.get('bandwidth_source')})"))
    return out


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return '<dl class="pairs">' + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in pairs) + "</dl>"


def _stability_text(cells: list[CellHistory]) -> str:
    """The device's stability score over its stored history (`bench devices stability` computes the same)."""
    history = [
        Run(c.model, c.backend, c.batch, c.precision, c.scenario, p.created_at, p.median, p.p99)
        for c in cells
        for p in c.ok_points
        if p.median and p.p99
    ]
    out = runs_stability(history)
    if "score" not in out:
        return f"not scored: no cell has {MIN_RUNS} or more ok runs with a median and a p99"
    worst = out["cells"][0]
    return (
        f"{out['score']:.0f}/100 ({out['rating']}) over {out['runs']} run(s) of {len(out['cells'])} cell(s); "
        f"least stable: {worst.model} on {worst.backend} ({worst.score:.0f}, CV {worst.cv:.1%})"
        + (f"; {out['too_few']} cell(s) with too few runs not scored" if out["too_few"] else "")
    )


class DevicePages(Publisher[SiteContext, Page]):
    id = "devices"

    def publish(self, ctx: SiteContext) -> list[Page]:
        pages = []
        for device in sorted({c.device for c in ctx.cells}):
            cells = [c for c in ctx.cells if c.device == device]
            recs = sorted((ctx.latest[c.key].rec for c in cells), key=lambda r: r.created_at)
            newest = recs[-1]
            peaks = next((p for p in (_peaks(r) for r in reversed(recs)) if p), [])
            stability = _stability_text(cells)
            body = (
                "<h2>Fingerprint</h2>"
                + _pairs(_fingerprint(newest))
                + f'<p class="caption">as recorded by run {h(newest.id[:8])} '
                f"({h(newest.created_at[:16])}).</p>"
                + "<h2>Catalog peaks</h2>"
                + (_pairs(peaks) if peaks else '<p class="note">No peaks recorded (no devices.yaml entry).</p>')
                + f"<h2>Stability</h2><p>{h(stability)}</p>"
                + f"<h2>Every model on {h(device)}</h2>"
                + filter_bar(cells)
                + cell_table(ctx, cells, "../")
            )
            pages.append(Page(f"devices/{slug(device)}.html", f"device {device}", body, kind="device"))
        return pages


class ModelPages(Publisher[SiteContext, Page]):
    id = "models"

    def publish(self, ctx: SiteContext) -> list[Page]:
        views = report_views(MODEL_VIEWS)
        pages = []
        for model in sorted({c.model for c in ctx.cells}):
            cells = [c for c in ctx.cells if c.model == model]
            rows = [ctx.latest[c.key] for c in cells]
            card = next((r.top1_source for r in rows if r.top1_source and r.top1_source.startswith("card")), None)
            body = (
                f"<p>{len(cells)} cell(s) on {len({c.device for c in cells})} device(s) and "
                f"{len({c.backend for c in cells})} backend(s)."
                + (f" Top-1 from the model card ({h(card[len('card: ') :])})." if card else "")
                + "</p>"
                + filter_bar(cells)
                + cell_table(ctx, cells, "../")
            )
            sections = publish_views(views, ViewContext(rows))
            pages.append(Page(f"models/{slug(model)}.html", f"model {model}", body, sections, kind="model"))
        return pages


def _runs_table(cell: CellHistory) -> str:
    rows = []
    for p in reversed(cell.points):
        versions = ", ".join(f"{k} {v}" for k, v in sorted(p.versions.items()))
        rows.append(
            f'<tr class="run{"" if p.ok else " failed"}" data-t="{h(p.created_at)}" data-commit="{h(p.commit)}" '
            f'data-tag="{h(p.tag)}" data-id="{h(p.id)}">'
            f"<td>{h(p.created_at[:19].replace('T', ' '))}</td><td>{h(p.status)}</td>"
            f'<td class="num">{h(median_ci(p))}</td><td class="num">{h(p.n)}</td>'
            f"<td><code>{h(p.commit[:10])}</code></td><td>{h(p.tag)}</td><td>{h(p.id[:12])}</td>"
            f'<td class="versions">{h(versions)}{h(" · " + p.error[:200]) if p.error else ""}</td></tr>'
        )
    head = "".join(
        f"<th>{c}</th>"
        for c in ("run (UTC)", "status", "median [95% CI]", "n", "commit", "tag", "run id", "versions / error")
    )
    return (
        f'<div class="table-wrap"><table class="data runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _changes_list(changes: list[Change]) -> str:
    if not changes:
        return '<p class="note">No change point in this history.</p>'
    items = []
    for c in reversed(changes):
        cls = ("slower" if c.ratio > 1 else "faster") if c.real else "unconfirmed"
        around = lambda p: (
            f"{p.created_at[:16].replace('T', ' ')} commit {p.commit[:10] or '?'}" + (f" tag {p.tag}" if p.tag else "")
        )
        items.append(
            f'<li class="change {cls}"><b>{h(change_text(c))}</b> between {h(around(c.before))} and '
            f"{h(around(c.after))}; tested by {h(c.method)} ({h(c.why)})</li>"
        )
    return f'<ul class="changes">{"".join(items)}</ul>'


class CellPages(Publisher[SiteContext, Page]):
    id = "cells"

    def publish(self, ctx: SiteContext) -> list[Page]:
        pages = []
        for c in ctx.cells:
            changes = ctx.changes.get(c.key, [])
            desc = c.describe()
            settings = ", ".join(f"{k}={v}" for k, v in sorted(c.settings.items()))
            body = (
                f'<p class="summary"><a href="../models/{h(slug(c.model))}.html">{h(c.model)}</a> on '
                f'<a href="../devices/{h(slug(c.device))}.html">{h(c.device)}</a> · {h(c.backend)} · '
                f"{h(c.precision)} · batch {h(c.batch)} · {h(c.scenario)} · configuration hash "
                f'<code>{h(c.key)}</code></p><p class="caption">settings: {h(settings)}</p>'
                '<form class="filters" onsubmit="return false"><label>from <input type="date" data-filter="from">'
                '</label><label>to <input type="date" data-filter="to"></label>'
                '<label>A (commit or tag) <input data-filter="a" size="12"></label>'
                '<label>B (commit or tag) <input data-filter="b" size="12"></label></form>'
                '<div id="ab" class="compare"></div>'
                + history_svg(c, changes)
                + "<h2>Change points</h2>"
                + _changes_list(changes)
                + "<h2>Runs</h2>"
                + _runs_table(c)
            )
            data = {
                "cell": desc,
                "points": c.points_json,
                "changes": [ch.to_json() for ch in changes],
            }
            pages.append(Page(cell_path(c.key), f"{c.model} · {c.backend} · {c.device}", body, data=data, kind="cell"))
        return pages


class RegressionsPage(Publisher[SiteContext, Page]):
    id = "regressions"

    def publish(self, ctx: SiteContext) -> list[Page]:
        rows = []
        for c in ctx.cells:
            for ch in ctx.changes.get(c.key, []):
                if ch.real and ch.ratio > 1:
                    rows.append((ch.after.created_at, c, ch))
        rows.sort(key=lambda t: t[0], reverse=True)
        items = "".join(
            f'<li class="change slower"><a href="{cell_path(c.key)}">{h(c.model)} · {h(c.backend)} · '
            f"{h(c.device)} · {h(c.precision)} · b{h(c.batch)}</a>: {h(change_text(ch))}, first seen "
            f"{h(ch.after.created_at[:16])} (commit {h(ch.after.commit[:10] or '?')}"
            f"{h(' tag ' + ch.after.tag) if ch.after.tag else ''})</li>"
            for _, c, ch in rows
        )
        body = (
            f"<p>Confirmed slowdowns beyond {ctx.threshold:.0%}, newest first: {len(rows)}. "
            'Also as <a href="regressions.json">regressions.json</a> and the Atom feed '
            '<a href="regressions.xml">regressions.xml</a>.</p>'
            + (f'<ul class="changes">{items}</ul>' if rows else '<p class="note">No regression.</p>')
        )
        return [Page("regressions.html", "regressions", body, kind="regressions")]


SITE_PAGES: list[Publisher[SiteContext, Page]] = [
    OverviewPage(),
    DevicePages(),
    ModelPages(),
    CellPages(),
    RegressionsPage(),
]
