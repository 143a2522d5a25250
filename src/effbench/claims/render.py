"""Terminal output of `bench claims`: the catalogue, one card, and the verification table."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from effbench.claims.library import Entry, Library
from effbench.claims.verdict import DOES_NOT_HOLD, FAILED, HOLDS, INCONCLUSIVE, rule

if TYPE_CHECKING:
    from effbench.claims.verify import Outcome

VERDICT_STYLE = {HOLDS: "green", DOES_NOT_HOLD: "red", INCONCLUSIVE: "yellow", FAILED: "red"}


def fmt_ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}x"


def fmt_ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]"


def paper_short(entry: Entry) -> str:
    title = entry.paper.title.split(":")[0]
    return f"{title} ({entry.paper.year})"


def list_table(lib: Library, unbuildable: dict[str, list[tuple[str, str]]]) -> Table:
    t = Table(title=f"{len(lib)} claim(s): `bench claims show NAME`, `bench claims verify NAME`")
    for col in ("name", "paper", "claim", "published on", "verifiable here"):
        t.add_column(col, overflow="fold")
    for e in lib:
        s = e.claim.settings
        missing = unbuildable.get(e.name) or []
        can = "[green]yes[/]" if not missing else "[red]no[/]: " + escape("; ".join(f"{m}: {w}" for m, w in missing))
        t.add_row(
            escape(e.name),
            escape(paper_short(e)),
            escape(e.claim.statement),
            escape(f"{s.device}, {s.runtime}, batch {s.batch}"),
            can,
        )
    return t


def show_card(console: Console, e: Entry, missing: list[tuple[str, str]]) -> None:
    c, s, p = e.claim, e.claim.settings, e.paper
    out = console.print
    out(f"[bold]{escape(c.name)}[/]  ({escape(e.origin)})")
    out(f"paper:     {escape(p.title)} ({escape(p.venue or str(p.year))}) {escape(p.link)}")
    out(f'says:      "{escape(c.says)}" ({escape(c.says_source)})')
    out(f"tested:    {escape(c.statement)}")
    out(f"ratio:     {c.published_ratio:.4g} ({escape(c.published_ratio_source)})")
    out(f"verdict:   {escape(rule(c.kind, c.published_ratio, c.tolerance))}")
    for side, m in zip("AB", c.models, strict=True):
        bits = [m.name]
        if m.resolution:
            bits.append(f"{m.resolution}px")
        if m.options:
            bits.append(" ".join(f"{k}={v}" for k, v in m.options.items()))
        if m.published:
            bits.append(f"published {m.published.value:g} {m.published.unit} ({m.published.source})")
        if m.unavailable:
            bits.append(f"not buildable: {m.unavailable}")
        out(f"model {side}:   {escape(m.display)}: {escape(', '.join(bits))}")
    out(
        f"published: {escape(s.device)} ({s.device_kind}) · {escape(s.runtime)} · batch {s.batch} · threads "
        f"{s.threads or 'not stated'} · {s.precision} · resolution {s.resolution or 'per model'} · {c.metric} "
        f"({s.what})"
    )
    out(f"           source: {escape(s.source)}")
    for n in c.notes:
        out(f"note:      {escape(n)}")
    if missing:
        out("[red]cannot be verified here[/]: " + escape("; ".join(f"{m}: {w}" for m, w in missing)))
    else:
        out(f"verify:    bench claims verify {escape(c.name)}")


def verify_table(outcomes: list[Outcome]) -> Table:
    first = outcomes[0].plan.entry.claim
    a, b = (m.display for m in first.models)
    t = Table(title=f"claim {first.name}: {first.statement}", title_justify="left", show_lines=True)
    for col, just in (
        ("runtime", "left"),
        ("device", "left"),
        ("batch", "right"),
        ("A ms", "right"),
        ("B ms", "right"),
        ("published", "right"),
        ("measured [95% CI]", "right"),
        ("verdict", "left"),
        ("notes", "left"),
    ):
        t.add_column(col, justify=cast(JustifyMethod, just), overflow="fold")
    for o in outcomes:
        v = o.verdict
        if v is None:  # not judged: verify() judges every outcome it returns
            continue
        style = VERDICT_STYLE.get(v.verdict, "")
        t.add_row(
            o.plan.backend,
            escape(o.plan.device),
            str(o.plan.batch),
            "-" if v.median_a_ms is None else f"{v.median_a_ms:.4g}",
            "-" if v.median_b_ms is None else f"{v.median_b_ms:.4g}",
            fmt_ratio(v.published),
            f"{fmt_ratio(v.ratio)} {fmt_ci(v.ci_low, v.ci_high)}".strip(),
            f"[{style}]{v.verdict}[/]",
            escape("; ".join([v.reason, *o.notes()])),
        )
    t.caption = (
        f"A = {a}, B = {b}; ratio = A's speed over B's (median B / median A per image), CI from "
        "the raw samples of all rounds"
    )
    return t
