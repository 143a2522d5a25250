"""CLI: `bench profile`, per-layer times mapped through fused kernels onto the ONNX graph.

The core CLI mounts it: `app.command("profile")(profile_command)`.

A profiled run is its own cell, because profiling slows a runtime down: for each batch size and
input size the command first runs a normal timed cell, then a profiled cell (RunConfig.profile_iters),
stores both, and reports how the profiled total compares with the timed median. Its run settings are
RunConfig's flags, as `bench run` declares them (commands/run.run_options). Exit codes: 0 done, 1 a
cell failed or the backend reports no per-layer times, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import typer
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table
from typing_extensions import Annotated

from effbench.commands.run import cell_options, options_of, run_options, with_options
from effbench.console import console, fmt, one_line_errors
from effbench.errors import EffbenchError, UsageError

if TYPE_CHECKING:
    from effbench.harness.config import RunConfig
    from effbench.harness.result import Result
    from effbench.harness.sink import ResultSink

SORT_KEYS = ("measured", "excess")


# the run settings `bench profile` takes, declared once on RunConfig's fields (as `bench run` has them)
RUN_SETTINGS = (
    *("model", "backend", "device", "input_size", "batch_size", "precision", "threads"),
    *("warmup_s", "warmup_iters", "duration_s", "min_iters", "timeout_s"),
)
# a profile warms up 1 s and measures 3 s per cell, whatever `bench run`'s defaults become
OWN_DEFAULTS = {"warmup_s": 1.0, "duration_s": 3.0}


def _profile_settings(
    iters: Annotated[int, typer.Option("--iters", help="Profiled inferences (per-layer times are their mean).")] = 20,
    top: Annotated[int, typer.Option("--top", help="Layers shown (all are stored).")] = 15,
    sort: Annotated[
        str, typer.Option("--sort", help="Rank layers by measured ms or by excess over the roofline bound.")
    ] = "measured",
) -> None:
    """`bench profile`'s own options beyond the run settings and cell_options (the signature is all
    that is used)."""


@one_line_errors
def profile_command(**params: Any) -> int:
    """Per-layer profile: where the time goes, kernel by kernel, against each kernel's roofline bound.

    Runs a timed cell, then a profiled one, for each batch size and input size. Per-layer times come from
    onnxruntime (its profiler), openvino (its counters), executorch and torch (torch.profiler). Each fused
    kernel maps back to the ONNX nodes it covers; time no ONNX node accounts for is shown as unmapped.
    """
    from effbench.harness.prepare import check_cell
    from effbench.harness.run_options import cells_from_flags, parse_opts
    from effbench.harness.sink import ResultSink, check_out_writable
    from effbench.harness.store import Store

    iters, top, sort, out = params["iters"], params["top"], params["sort"], params["out"]
    if iters < 1:
        raise UsageError(f"invalid --iters: {iters}; profile at least 1 inference")
    if top < 1:
        raise UsageError(f"invalid --top: {top}; show at least 1 layer")
    if sort not in SORT_KEYS:
        raise UsageError(f"unknown --sort {sort!r}; use {' or '.join(SORT_KEYS)}")
    settings = {name: params[name] for name in RUN_SETTINGS}
    cells = cells_from_flags(settings, options=parse_opts(params["opt"]), tag=params["tag"])
    check_out_writable(out)
    for cell in cells:
        check_cell(cell)  # unknown model / backend / precision: one line before any work
    sink = ResultSink(out, Store(params["db"]) if params["store_results"] else None, "bench profile")
    failed = []
    for cell in cells:
        why = _profile_cell(cell, iters, params["isolate"], sink, top, sort)
        if why:
            failed.append(why if len(cells) == 1 else f"{_label(cell)}: {why}")
    code = sink.summary()
    if failed:
        raise EffbenchError("; ".join(failed))
    return code


with_options(
    profile_command,
    [*run_options(RUN_SETTINGS, defaults=OWN_DEFAULTS), *options_of(_profile_settings), *options_of(cell_options)],
)


def _label(cell: RunConfig) -> str:
    return f"batch {cell.batch_size}" + (f", {cell.input_size} px" if cell.input_size else "")


def _profile_cell(timed_cfg: RunConfig, iters: int, isolate: bool, sink: ResultSink, top: int, sort: str) -> str | None:
    """Time the cell, then profile it; store both, print the profile. Why it failed, or None."""
    timed = _run(timed_cfg, isolate)
    if timed.status != "ok":
        sink(timed)
        return f"timed cell {timed.status}: {timed.error}"
    # the timed cell checks the outputs
    profiled = _run(timed_cfg.model_copy(update={"profile_iters": iters, "parity": False}), isolate)
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
        return f"profiled cell {profiled.status}: {profiled.error}"
    if not prof or prof.get("available") is False:
        why = (prof or {}).get("reason") or f"the {profiled.backend} backend reports no per-layer times"
        return f"no per-layer profile: {why} (profiling works with onnxruntime, openvino, executorch and torch)"
    render(profiled.to_dict(), timed.to_dict(), top=top, sort=sort)
    return None


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
