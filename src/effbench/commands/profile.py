"""CLI: `bench profile`, per-layer times mapped through fused kernels onto the ONNX graph.

The core CLI mounts it: `app.command("profile")(profile_command)`.

A profiled run is its own cell, because profiling slows a runtime down: the command first runs a
normal timed cell, then a profiled cell (RunConfig.profile_iters), stores both, and reports how the
profiled total compares with the timed median. Exit codes: 0 done, 1 a cell failed or the backend
reports no per-layer times, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, cast

import typer
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table

from effbench.commands.options import DbOption, OutOption, TagOption
from effbench.console import console, fmt, one_line_errors
from effbench.errors import EffbenchError, UsageError

if TYPE_CHECKING:
    from effbench.harness.config import RunConfig
    from effbench.harness.result import Result

SORT_KEYS = ("measured", "excess")


@one_line_errors
def profile_command(
    model: str = typer.Option(
        ..., "--model", "-m", help="Card name, timm:<name>, path.onnx, or package.module:factory."
    ),
    backend: str = typer.Option(
        ..., "--backend", "-b", help="onnxruntime, openvino, executorch or torch (per-layer times)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda:0, or a devices.yaml name."),
    iters: int = typer.Option(20, "--iters", help="Profiled inferences (per-layer times are their mean)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime's own thread setting."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | bf16 | fp16 | int8."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    top: int = typer.Option(15, "--top", help="Layers shown (all are stored)."),
    sort: str = typer.Option(
        "measured", "--sort", help="Rank layers by measured ms or by excess over the roofline bound."
    ),
    warmup: float = typer.Option(1.0, "--warmup", help="Warm-up seconds of each cell."),
    warmup_iters: int = typer.Option(10, "--warmup-iters", help="Minimum warm-up iterations."),
    duration: float = typer.Option(3.0, "--duration", help="Minimum measuring seconds of each cell."),
    min_iters: int = typer.Option(30, "--min-iters", help="Minimum measured iterations of each cell."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Override the input resolution."),
    opt: Optional[List[str]] = typer.Option(None, "--opt", help="Backend option KEY=VALUE (repeatable)."),
    db: DbOption = None,
    out: OutOption = None,
    tag: TagOption = None,
    timeout: float = typer.Option(900.0, "--timeout", help="Kill a cell's worker after this many seconds."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each cell in its own worker process."),
    store_results: bool = typer.Option(True, "--store/--no-store", help="Write both results to the database."),
) -> int:
    """Per-layer profile: where the time goes, kernel by kernel, against each kernel's roofline bound.

    Runs a timed cell, then a profiled one (ONNX Runtime's profiler, OpenVINO's counters, torch.profiler).
    Each fused kernel maps back to the ONNX nodes it covers; time no ONNX node accounts for is shown as unmapped.
    """
    from effbench.harness.prepare import check_cell
    from effbench.harness.run_options import make_config, parse_opts
    from effbench.harness.sink import ResultSink, check_out_writable
    from effbench.harness.store import Store

    if iters < 1:
        raise UsageError(f"invalid --iters: {iters}; profile at least 1 inference")
    if top < 1:
        raise UsageError(f"invalid --top: {top}; show at least 1 layer")
    if sort not in SORT_KEYS:
        raise UsageError(f"unknown --sort {sort!r}; use {' or '.join(SORT_KEYS)}")
    options = parse_opts(opt)
    check_out_writable(out)
    timed_cfg = make_config(
        model=model,
        backend=backend,
        device=device,
        batch_size=batch,
        precision=precision,
        threads=threads,
        warmup_s=warmup,
        warmup_iters=warmup_iters,
        duration_s=duration,
        min_iters=min_iters,
        input_size=input_size,
        options=options,
        tag=tag,
        timeout_s=timeout,
    )
    check_cell(timed_cfg)  # unknown model / backend / precision: one line before any work
    profiled_cfg = timed_cfg.model_copy(
        update={"profile_iters": iters, "parity": False}
    )  # the timed cell checks the outputs
    sink = ResultSink(out, Store(db) if store_results else None, "bench profile")

    timed = _run(timed_cfg, isolate)
    if timed.status != "ok":
        sink(timed)
        sink.summary()
        raise EffbenchError(f"timed cell {timed.status}: {timed.error}")
    profiled = _run(profiled_cfg, isolate)
    prof = profiled.extra.get("profile") if profiled.status == "ok" else None
    timed_median = (timed.latency_ms or {}).get("median")
    if prof is not None:
        prof["timed_cell_median_ms"] = timed_median
        prof["timed_cell_id"] = timed.id
        total = prof.get("profiled_total_ms")
        prof["profiled_vs_timed_cell"] = total / timed_median if total and timed_median else None
        own = prof.get("timed_median_ms")  # the profiled cell's median, profiler on
        if own and timed_median and prof.get("backend_layers"):
            prof["profiler_overhead_ms"] = own - timed_median
            prof["profiler_overhead_us_per_kernel"] = (own - timed_median) * 1e3 / prof["backend_layers"]
    # a profiled cell without a profile is only a slower latency record: not kept
    for r in [timed, profiled] if prof is not None or profiled.status != "ok" else [timed]:
        sink(r)
    if profiled.status != "ok":
        raise EffbenchError(f"profiled cell {profiled.status}: {profiled.error}")
    if not prof or prof.get("available") is False:
        why = (prof or {}).get("reason") or f"the {profiled.backend} backend reports no per-layer times"
        raise EffbenchError(
            f"no per-layer profile: {why} (profiling works with onnxruntime, openvino, executorch and torch)"
        )
    render(profiled.to_dict(), timed.to_dict(), top=top, sort=sort)
    return sink.summary()


def _run(cfg: RunConfig, isolate: bool) -> Result:
    from effbench.harness.scheduler import run_cells

    return run_cells([cfg], isolate=isolate)[0]


# --------------------------------------------------------------------------- rendering
def _short(name: str, width: int = 56) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _nodes_cell(nodes: list[str], shown: int = 2) -> str:
    if not nodes:
        return "-"
    names = ", ".join(_short(n, 34) for n in nodes[:shown])
    more = f" +{len(nodes) - shown}" if len(nodes) > shown else ""
    return f"{len(nodes)}: {names}{more}"


def _ms(v: float | None) -> str:
    return fmt(v, ".4g")


def render(record: dict, timed: dict | None = None, top: int = 15, sort: str = "measured") -> None:
    """Print the profile of `record` (a profiled cell's JSON record)."""
    prof = record["extra"]["profile"]
    per_layer = prof.get("per_layer", True)
    console.print(
        f"[bold]bench profile[/]: {record['model']} on {record['backend']} ({record['device']}, "
        f"{record.get('precision_ran') or record['precision']}, batch {record['batch_size']}), "
        f"{prof.get('iterations', '?')} profiled inferences, {prof['backend_layers']} runtime layers",
        highlight=False,
    )
    console.print(f"[dim]mapping: {escape(prof.get('method', ''))}[/]", highlight=False)

    layers = list(prof.get("layers") or [])
    if sort == "excess":
        layers.sort(key=lambda r: -(r.get("excess_ms") if r.get("excess_ms") is not None else r["measured_ms"]))
    t = Table(title=f"top {min(top, len(layers))} of {len(layers)} layers by {sort} time", title_justify="left")
    for col, just in [
        ("#", "right"),
        ("layer", "left"),
        ("op types", "left"),
        ("ONNX nodes", "left"),
        ("ms", "right"),
        ("share", "right"),
        ("bound ms", "right"),
        ("bound", "left"),
        ("excess ms", "right"),
        ("GFLOP/s", "right"),
    ]:
        t.add_column(col, justify=cast(JustifyMethod, just), overflow="fold")
    total = prof.get("profiled_total_ms") or 0.0
    for i, row in enumerate(layers[:top], 1):
        nodes = row.get("nodes") or []
        if not per_layer:
            node_cell = "n/a (torch eager)"
        elif nodes:
            node_cell = escape(_nodes_cell(nodes))
        else:
            node_cell = f"[yellow]unmapped: {row.get('unmapped_reason', '-')}[/]"
        gflops = row.get("achieved_flops_per_s")
        t.add_row(
            str(i),
            escape(_short(row["name"])),
            escape(str(row.get("op_type") or "")),
            node_cell,
            _ms(row["measured_ms"]),
            fmt(row["measured_ms"] / total if total else None, ".1%"),
            _ms(row.get("bound_ms")),
            row.get("bound") or "-",
            _ms(row.get("excess_ms")),
            fmt(gflops / 1e9 if gflops else None, ".3g"),
        )
    console.print(t)

    ot = Table(title="by op type: share of measured time vs share of the roofline bound", title_justify="left")
    for col, just in [
        ("op type", "left"),
        ("kernels", "right"),
        ("measured ms", "right"),
        ("share of measured", "right"),
        ("bound ms", "right"),
        ("share of bound", "right"),
    ]:
        ot.add_column(col, justify=cast(JustifyMethod, just))
    for row in prof.get("op_types") or []:
        if not row.get("measured_ms") and not row.get("bound_ms"):
            continue
        ot.add_row(
            escape(row["op_type"]),
            str(row.get("kernels", "")),
            _ms(row.get("measured_ms")),
            fmt(row.get("share_of_measured"), ".1%"),
            _ms(row.get("bound_ms")),
            fmt(row.get("share_of_bound"), ".1%"),
        )
    console.print(ot)

    median = (timed or {}).get("latency_ms", {}).get("median") if timed else prof.get("timed_median_ms")
    median = prof.get("timed_cell_median_ms") or median
    ratio = total / median if median else None
    console.print(
        f"profiled total {total:.4g} ms vs timed median {_ms(median)} ms "
        f"({fmt(ratio, '.2f')}x: profiling overhead and run-to-run noise)",
        highlight=False,
    )
    own = prof.get("timed_median_ms")
    if own:
        console.print(
            f"[dim]the profiled cell's own median (profiler on, before the profiled inferences): {own:.4g} ms[/]",
            highlight=False,
        )
    overhead = prof.get("profiler_overhead_ms")
    if overhead is not None and median and overhead > 0.25 * median:
        console.print(
            f"[yellow]note:[/] the profiler slows this runtime by {overhead:.3g} ms per inference, about "
            f"{prof['profiler_overhead_us_per_kernel']:.3g} µs per kernel: short kernels are inflated most",
            highlight=False,
        )
    unmapped = prof.get("unmapped") or []
    reasons = prof.get("unmapped_reasons") or {}
    detail = "; ".join(
        f"{k} {v['ms']:.3g} ms ({v['kernels']})" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]["ms"])
    )
    share = prof.get("unmapped_share")
    console.print(
        f"unmapped: {prof.get('unmapped_ms', 0.0):.4g} ms ({len(unmapped)} kernel{'' if len(unmapped) == 1 else 's'}"
        f"{', ' + format(share, '.1%') + ' of profiled time' if share is not None else ''})"
        + (f": {detail}" if detail else ""),
        highlight=False,
    )
    if prof.get("graph_flops") and not per_layer:
        console.print(
            f"op types timed here account for {prof['mapped_flops'] / prof['graph_flops']:.2%} of the "
            f"graph's {prof['graph_flops'] / 1e6:.4g} MFLOPs",
            highlight=False,
        )
    elif prof.get("graph_flops"):
        cov = prof.get("coverage") or {}
        line = (
            f"mapped FLOPs: {prof['mapped_flops'] / 1e6:.4g} M of {prof['graph_flops'] / 1e6:.4g} M "
            f"({prof['mapped_flops'] / prof['graph_flops']:.2%})"
        )
        if cov:
            line += (
                f"; graph nodes: {cov['in_timed_kernels']} in timed kernels, {cov['in_untimed_layers']} in layers "
                f"that did not run, {cov['uncovered']} uncovered, {cov['folded_nodes']} constant-folded"
            )
        console.print(line, highlight=False)
    for w in prof.get("warnings") or []:
        console.print(f"[yellow]note:[/] {escape(w)}", highlight=False)
