"""`bench max-qps`: the highest server QPS under a p99 bound, found with MLPerf LoadGen Server runs
(harness/max_qps.py), each probe printed; the best probe's record keeps the whole curve."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Optional

import typer

from effbench.commands.options import DbOption, OutOption
from effbench.console import console, error_line, result_table
from effbench.errors import RunFailed, UsageError

if TYPE_CHECKING:
    from effbench.harness.max_qps import Probe


def _percent(text: str) -> float:
    from effbench.harness.config import parse_percent

    try:
        v = parse_percent(text)
    except ValueError as e:
        raise UsageError(f"invalid --tolerance {text!r}: {e} (e.g. --tolerance 10%)") from None
    if v is None or not 0 < v < 1:
        raise UsageError(f"invalid --tolerance {text!r}: must lie between 0% and 100% (e.g. --tolerance 10%)")
    return v


def max_qps_command(
    model: str = typer.Option(
        ..., "--model", "-m", help="Card name, timm:<name>, path.onnx, or package.module:factory."
    ),
    backend: str = typer.Option(..., "--backend", "-b", help="Backend name or alias (`bench backends`)."),
    p99: str = typer.Option(..., "--p99", help="The p99 latency bound, e.g. 15ms (a bare number is ms)."),
    start_qps: Optional[float] = typer.Option(
        None, "--start-qps", help="First rate to probe (default: half the rate of a short latency run)."
    ),
    max_probes: int = typer.Option(8, "--max-probes", min=2, max=50, help="At most this many LoadGen runs."),
    tolerance: str = typer.Option("10%", "--tolerance", help="Stop when the pass/fail bracket is this narrow."),
    run_options: str = typer.Option(
        "", "--run", help='More `bench run` options for every probe, e.g. "--threads 2 --duration 5".'
    ),
    db: DbOption = None,
    out: OutOption = None,
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run each probe in its own worker process."),
    store_results: bool = typer.Option(True, "--store/--no-store", help="Write the record to the database."),
) -> None:
    """The highest LoadGen Server QPS whose run is VALID with its p99 within --p99."""
    from effbench.commands.run import parse_run_args
    from effbench.harness.flags import milliseconds
    from effbench.harness.max_qps import probe_of, search
    from effbench.harness.prepare import check_cell
    from effbench.harness.run_options import bad_value
    from effbench.harness.scheduler import run_cells
    from effbench.harness.sink import ResultSink, check_out_writable
    from effbench.harness.store import Store

    try:
        bound_ms = milliseconds(p99)
    except ValueError as e:
        raise bad_value("--p99", p99, str(e), "--p99 15ms") from None
    assert bound_ms is not None
    if start_qps is not None and not start_qps > 0:
        raise UsageError(f"invalid --start-qps {start_qps!r}: must be positive (e.g. --start-qps 100)")
    tol = _percent(tolerance)
    text = f"--model {shlex.quote(model)} --backend {shlex.quote(backend)} {run_options}"
    cells = parse_run_args(f"{text} --scenario server --latency-bound {bound_ms}ms")
    if len(cells) != 1:
        raise UsageError("bench max-qps measures one cell: give one --batch in --run")
    cell = cells[0]
    check_out_writable(out)
    check_cell(cell)  # bad model / backend / option / device: before any work
    store = Store(db) if store_results else None
    launchers: dict = {}
    results: list = []

    def run(qps: float | None) -> tuple[float, Probe]:
        cfg = cell.model_copy(update={"target_qps": qps, "tag": cell.tag or "max-qps"})
        res = run_cells([cfg], isolate=isolate, launchers=launchers, show_progress=False)[0]
        rec = res.to_dict()
        offered = qps or ((rec.get("extra") or {}).get("scenario") or {}).get("settings", {}).get("target_qps")
        if offered is None:
            raise RunFailed(f"the first probe failed before LoadGen ran: {rec.get('status')}: {rec.get('error')}")
        p = probe_of(rec, float(offered), bound_ms)
        results.append(res)
        return float(offered), p

    def show(i: int, p: Probe) -> None:
        p99_text = f"p99 {p.p99_ms:.3f} ms" if p.p99_ms is not None else "no p99"
        verdict = "[green]passes[/]" if p.passed else f"[red]fails[/] ({p.reason})"
        console.print(f"probe {i + 1}/{max_probes}: {p.qps:.4g} QPS -> {p99_text}, {verdict}", highlight=False)

    try:
        found = search(run, bound_ms, start_qps, max_probes, tol, show)
    finally:
        for launcher in launchers.values():
            launcher.close()
    summary = found.to_dict()
    order = [p.qps for p in found.probes]
    best = found.best
    pick = order.index(best.qps) if best else order.index(min(order))
    result = results[pick].with_extra(max_qps=summary)
    sink = ResultSink(out, store, "bench max-qps")
    sink(result)
    console.print(result_table([result.to_dict()], title="bench max-qps: the record kept"))
    if best:
        console.print(
            f"highest QPS with a VALID LoadGen Server run and p99 <= {bound_ms:g} ms: {best.qps:.4g} "
            f"(p99 {best.p99_ms:.3f} ms; {len(found.probes)} probes, {found.stopped})",
            highlight=False,
        )
    else:
        error_line(f"no probed rate met p99 <= {bound_ms:g} ms (lowest tried {min(order):.4g} QPS): {found.stopped}")
    code = sink.summary()
    raise typer.Exit(code or (0 if best else 1))
