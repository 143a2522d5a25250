"""Measuring the kernel table twice, apart in time.

A kernel is profiled over a few dozen inferences: for a small kernel that is well under a
millisecond, a snapshot of whatever the machine was doing then. On a shared machine two such
snapshots of the same kernel differ by 20-45% (sd, 2-vCPU VM, docs/measurements/
predictor-error-analysis-2026-12-07.md), and a model's kernels, measured one after another, share
their snapshot's slow-down. So when the first pass is done and time is left, the kernels are
measured again in another order (the most time in the zoo first) and a kernel's time is the fastest
of its passes: whatever else the machine does only ever slows a snapshot down (on the build of
2026-12-07 the fastest of two passes fitted the zoo better than the first pass or their mean:
docs/measurements/predictor-error-analysis-2026-12-07.md). Each pass is a row of kernels.jsonl;
`merged` folds them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from effbench.predict.measure import kernel_job

if TYPE_CHECKING:
    from effbench.predict.kernels import Kernel

PASSES = 2


def merged(lines: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The table by signature from kernels.jsonl's rows, each pass folded in by add_pass."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        add_pass(rows, line)
    return rows


def add_pass(rows: dict[str, dict[str, Any]], line: dict[str, Any]) -> None:
    """Fold one measurement of a kernel into the table: its first row is kept, its `kernel_ns` is
    the fastest pass that measured it (`passes`: their times in order); a failed pass counts for
    nothing."""
    row = rows.get(line["signature"])
    if row is None or "kernel_ns" not in row:
        row = rows[line["signature"]] = {**line, "passes": []}
    if "kernel_ns" in line:
        row["passes"].append(line["kernel_ns"])
        row["kernel_ns"] = float(min(row["passes"]))


def repeat_jobs(
    rows: dict[str, dict[str, Any]], kernels: dict[str, Kernel], uses: dict[str, int], directory: Path
) -> list[dict[str, Any]]:
    """A job for every measured kernel with fewer than PASSES passes, the most time in the zoo (its
    time times its uses) first."""
    todo = [sig for sig, row in rows.items() if sig in kernels and "kernel_ns" in row and len(row["passes"]) < PASSES]
    todo.sort(key=lambda sig: -float(rows[sig]["kernel_ns"]) * uses.get(sig, 1))
    return [kernel_job(kernels[sig], directory) for sig in todo]


def pass_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many kernels were measured how many times, for the predictor's metadata."""
    return dict(sorted(Counter(str(len(row["passes"])) for row in rows).items()))
