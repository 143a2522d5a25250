"""What building a cell's model in a process of its own costs (harness/prepare_pool.py): the wall
time of preparing one uncached cell (timm model -> ONNX export, reference outputs, graph analysis)
in the harness's own process, against the same through prepare_cells (a build process, then the
cell prepared from the cache). Each side starts from an empty cache in a fresh interpreter; rounds
are interleaved and the ratio of medians is printed."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

MODEL = "mobilenetv3_small_050"
SIDES = {
    "in-process": "from effbench.harness.prepare import check_cell, prepare; prepare(check_cell(cfg))",
    "isolated": "from effbench.harness.scheduler import prepare_cells; "
    "r = prepare_cells([cfg]); assert not hasattr(r[0], 'status'), r[0].error",
}


def _once(side: str) -> float:
    code = (
        "from effbench.harness.config import RunConfig; "
        f"cfg = RunConfig(model={MODEL!r}, backend='onnxruntime'); " + SIDES[side]
    )
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], env=dict(os.environ, EFFBENCH_CACHE=cache), capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-2000:]}")
    return wall


def main(rounds: int = 3) -> None:
    walls: dict[str, list[float]] = {side: [] for side in SIDES}
    for r in range(rounds):
        for side in SIDES if r % 2 == 0 else reversed(list(SIDES)):
            walls[side].append(_once(side))
    med = {side: statistics.median(w) for side, w in walls.items()}
    for side, w in walls.items():
        print(f"{side}: median {med[side]:.1f} s over {len(w)} rounds ({', '.join(f'{x:.1f}' for x in w)})")
    print(f"isolated / in-process: {med['isolated'] / med['in-process']:.2f}x (the price of a crash-proof build)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
