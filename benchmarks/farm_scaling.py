"""The farm's scaling and its scheduling overhead (targets: >= 1.8x for 2 devices over 1, <= 0.2 s per cell).

A real Ray farm (a head and two nodes, one device each) in a loopback-only network namespace, the
same lab the tests use (tests/farm/lab.py; needs root). Sixteen null-backend busy-wait cells run
first on one device, then eight on each of two. Times come from the records, not from the command:
each cell's node-side start and end around its measurement, and when the submitting side queued it.

- speed-up: the 1-device sweep's span (first submission to last result) over the 2-device span;
- overhead per cell, all in: (span - time the node spent in the cell) / cells, on 1 device: task
  dispatch, result return, commit, and the first task's Ray worker start, spread over the cells;
  and the same without that one-time worker start;
- gap between cells: median time from one cell's end on a device to the next cell's start there;
- schedule efficiency with 2 devices: the busiest device's node-side time over the span (1.0: the
  farm kept both devices busy all along). Where the two "devices" share one host's CPUs, as here,
  the cells slow each other down: the speed-up falls short of 2 by that, not by the farm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effbench.harness.result import Result
from effbench.harness.store import Store
from tests.farm.lab import Farm, Namespace, missing_tools, short_tmp

TINY_ONNX = """
import onnx, sys
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "tiny", [x], [y]),
                      opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
"""


def sweep(farm: Farm, model: Path, devices: list[str], per_device: int, duration: float) -> list[Result]:
    name = f"scale-{len(devices)}"
    path = farm.root / f"{name}.yaml"
    path.write_text(f"""
models: [{model}]
backends: [null]
devices: [{", ".join(devices)}]
batches: [{", ".join(str(b) for b in range(1, per_device + 1))}]
options: {{busy_us: "500"}}
duration_s: {duration}
warmup_s: 0.05
warmup_iters: 3
min_iters: 5
""")
    db = farm.root / f"{name}.db"
    r = farm.bench("sweep", path, "--farm", farm.address, "--db", db, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"sweep failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    records = Store(str(db)).results()
    bad = [x for x in records if not x.ok]
    if bad:
        raise SystemExit(f"{len(bad)} cell(s) not ok: {bad[0].error}")
    return records


def span(records: list[Result]) -> float:
    farm = [x.extra["farm"] for x in records]
    return max(f["finished_unix"] for f in farm) - min(f["submitted_unix"] for f in farm)


def busy(records: list[Result]) -> float:
    return sum(x.extra["farm"]["finished_unix"] - x.extra["farm"]["started_unix"] for x in records)


def gaps(records: list[Result]) -> list[float]:
    out = []
    for device in {x.device for x in records}:
        spans = sorted(
            (x.extra["farm"]["started_unix"], x.extra["farm"]["finished_unix"]) for x in records if x.device == device
        )
        out += [nxt - end for (_, end), (nxt, _) in zip(spans, spans[1:])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=16, help="cells in each sweep (even)")
    ap.add_argument("--duration", type=float, default=2.0, help="measuring seconds per cell")
    args = ap.parse_args()
    why = missing_tools()
    if why:
        raise SystemExit(f"farm_scaling needs a loopback-only network namespace: {why}")
    ns = Namespace.create()
    farm = Farm(ns, short_tmp("effb-scale-"))
    try:
        farm.start()
        model = farm.root / "tiny.onnx"
        farm.ns.run([sys.executable, "-c", TINY_ONNX, model], check=True)
        one = sweep(farm, model, ["farm-a"], args.cells, args.duration)
        two = sweep(farm, model, ["farm-a", "farm-b"], args.cells // 2, args.duration)
    finally:
        farm.stop()
        ns.destroy()
    n = len(one)
    cell_s = busy(one) / n
    speedup = span(one) / span(two)
    overhead = (span(one) - busy(one)) / n
    first = min(one, key=lambda x: x.extra["farm"]["started_unix"]).extra["farm"]
    first_start = first["started_unix"] - first["submitted_unix"]
    per_device = max(busy([x for x in two if x.device == d]) for d in {x.device for x in two})
    print(
        f"{n} busy-wait cells of {args.duration:g} s measuring "
        f"({cell_s:.2f} s per cell on the node, worker start included)"
    )
    print(f"1 device: {span(one):.1f} s; 2 devices: {span(two):.1f} s; speed-up {speedup:.2f}x (target >= 1.8x)")
    print(
        f"scheduling overhead per cell, all in (1 device): {overhead:.3f} s (target <= 0.2 s); without the "
        f"first task's Ray worker start ({first_start:.2f} s, once per node): {overhead - first_start / n:.3f} s"
    )
    print(
        f"schedule efficiency with 2 devices: {per_device / span(two):.2f} (busiest device's node-side time "
        f"{per_device:.1f} s over the {span(two):.1f} s span)"
    )
    print(
        f"gap between consecutive cells on a device: median {statistics.median(gaps(one)):.3f} s (1 device), "
        f"{statistics.median(gaps(two)):.3f} s (2 devices)"
    )
    print(
        f"node-side time per cell with 2 devices busy at once: {busy(two) / len(two):.2f} s "
        f"(vs {cell_s:.2f} s alone: what the two cells took from each other on this host's CPUs)"
    )


if __name__ == "__main__":
    main()
