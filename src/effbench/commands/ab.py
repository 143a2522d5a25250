"""`bench ab`: A and B measured interleaved in one job (A B A B ...), then the gate's verdicts.

On a noisy machine, comparing against a baseline taken minutes earlier mostly measures the machine;
interleaving exposes A and B to the same drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from effbench.commands.options import DbOption
from effbench.console import console
from effbench.harness.sink import write_file


def ab_command(
    a: str = typer.Option(..., "--a", help='A\'s `bench run` options, e.g. "--model old.onnx --backend ort".'),
    b: str = typer.Option(..., "--b", help="B's `bench run` options (the candidate)."),
    rounds: int = typer.Option(5, "--rounds", min=1, help="A B rounds; samples of all rounds are pooled per side."),
    threshold: str = typer.Option("5%", "--threshold", help="Smallest change that counts."),
    alpha: float = typer.Option(0.01, "--alpha", help="Significance level of the Mann-Whitney test."),
    metric: str = typer.Option("latency", "--metric", help="latency | throughput"),
    fail_on: str = typer.Option("regression", "--fail-on", help="regression | inconclusive"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the Markdown verdict table here."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the verdicts as JSON here."),
    db: DbOption = None,
) -> None:
    """Run A and B interleaved and say whether B is a regression or an improvement over A."""
    from effbench.commands.gate import parse_threshold
    from effbench.commands.run import parse_run_args
    from effbench.gate.render import print_report, to_json, to_markdown
    from effbench.gate.verdict import ab_verdicts
    from effbench.harness.scheduler import run_cells
    from effbench.harness.sink import ResultSink, check_out_writable
    from effbench.harness.store import Store

    a_cells, b_cells = parse_run_args(a), parse_run_args(b)
    check_out_writable(markdown, "--markdown")  # the verdicts must have somewhere to go before any work
    check_out_writable(json_out, "--json")
    thr = parse_threshold(threshold)
    sink = ResultSink(None, Store(db) if db else None, "bench ab")
    a_recs: list[dict] = []
    b_recs: list[dict] = []
    try:
        for r in range(rounds):
            console.print(f"[dim]round {r + 1}/{rounds}: A then B[/]")
            for cells, recs, side in ((a_cells, a_recs, "A"), (b_cells, b_recs, "B")):
                tagged = [c.model_copy(update={"tag": c.tag or f"ab:{side}"}) for c in cells]
                recs.extend(res.to_dict() for res in run_cells(tagged, on_result=sink))
    except KeyboardInterrupt:
        sink.summary()  # a result spooled on the way out is named with its import command
        raise
    report = ab_verdicts(a_recs, b_recs, threshold=thr, alpha=alpha, metric=metric)
    if markdown:
        write_file(markdown, to_markdown(report, fail_on))
    if json_out:
        write_file(json_out, to_json(report, fail_on))
    print_report(report, console, fail_on)
    stored = sink.summary()  # 1 when a result could only be spooled
    raise typer.Exit(report.exit_code(fail_on) or stored)
