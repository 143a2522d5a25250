"""Terminal output shared by the commands: result tables, progress, one-line errors."""

from __future__ import annotations

import sys
from typing import Any, cast

from rich.console import Console, JustifyMethod
from rich.table import Table

# Piped output (CI logs, files) gets a wide table instead of one folded into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True)


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def one_line_errors(fn):
    """For a typer command: problems become one line on stderr and an exit code (the error's own,
    2 for anything unforeseen), never a traceback. The command may return its exit code."""
    import functools

    import typer
    from rich.markup import escape

    from effbench.errors import EffbenchError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            code = fn(*args, **kwargs)
        except EffbenchError as exc:
            message, code = str(exc), exc.exit_code
        except (typer.Exit, KeyboardInterrupt):
            raise
        except Exception as exc:  # an input nobody foresaw: still one line
            message, code = f"unexpected {type(exc).__name__}: {exc}", 2
        else:
            message = ""
        if message:
            error_line(escape(" ".join(message.split())))
        if code:
            raise typer.Exit(code)

    return wrapper


def fmt(v: Any, spec: str = ".3g", none: str = "-") -> str:
    if v is None:
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def top1_text(acc: dict | None) -> str:
    """'97.2 [96.1–98.0]' and, beside an fp32 reference, its drop: ' −0.4 pt'."""
    if not acc or acc.get("top1") is None:
        return "-"
    lo, hi = acc.get("top1_ci") or (None, None)
    text = f"{acc['top1']:.1f}" + (f" [{lo:.1f}–{hi:.1f}]" if lo is not None else "")
    if acc.get("drop") is not None:
        text += f" Δ{-acc['drop']:+.1f}"
    return text


def result_table(records: list[dict], title: str = "results") -> Table:
    t = Table(title=title, show_lines=False)
    with_accuracy = any(r.get("accuracy") for r in records)
    for col, just in [
        ("model", "left"),
        ("backend", "left"),
        ("device", "left"),
        ("batch", "right"),
        ("prec", "left"),
        ("scenario", "left"),
        ("status", "left"),
        ("median ms", "right"),
        ("95% CI", "right"),
        ("p99 ms", "right"),
        ("img/s", "right"),
        ("MACs", "right"),
        ("eff.", "right"),
        ("gap", "right"),
        ("parity", "left"),
        *([("top-1 %", "right")] if with_accuracy else []),
        ("notes", "left"),
    ]:
        t.add_column(col, justify=cast(JustifyMethod, just), overflow="fold")
    for r in records:
        lat = r.get("latency_ms") or {}
        par = r.get("parity")
        status = r.get("status", "?")
        style = {
            "ok": "green",
            "failed": "red",
            "crashed": "red",
            "timeout": "red",
            "skipped": "yellow",
            "lost": "magenta",
        }.get(status, "red")
        notes = [r["error"]] if r.get("error") else []
        if r.get("artifact_cached"):
            notes.append("artifact from cache")
        notes.extend(r.get("warnings") or [])
        placement = (r.get("runtime") or {}).get("placement") or {}
        if placement.get("summary"):
            notes.append(placement["summary"])
        prec = r.get("precision", "")
        if r.get("precision_ran") and r["precision_ran"] != prec:
            prec = f"{prec}→{r['precision_ran']}"
        macs = r.get("macs")
        gap = None
        if r.get("roofline_ms") and lat.get("median"):
            gap = lat["median"] / r["roofline_ms"]
        t.add_row(
            str(r.get("model")),
            str(r.get("backend")),
            str(r.get("device")),
            str(r.get("batch_size")),
            prec,
            str(r.get("scenario")),
            f"[{style}]{status}[/]",
            fmt(lat.get("median"), ".4g"),
            f"{fmt(lat.get('ci95_low'), '.4g')}–{fmt(lat.get('ci95_high'), '.4g')}" if lat else "-",
            fmt(lat.get("p99"), ".4g"),
            fmt(r.get("throughput_per_s"), ".1f"),
            f"{macs / 1e6:.1f} M" if macs else "-",
            fmt(r.get("efficiency"), ".1%") if r.get("efficiency") is not None else "-",
            f"{gap:.1f}x" if gap else "-",
            "-" if par is None else ("[green]ok[/]" if par.get("ok") else "[red]FAIL[/]"),
            *([top1_text(r.get("accuracy"))] if with_accuracy else []),
            "; ".join(notes)[:300],
        )
    return t


def is_tty() -> bool:
    return sys.stderr.isatty()
