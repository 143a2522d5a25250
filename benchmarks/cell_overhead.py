"""What a cell costs beyond what it measures, side by side in one run:

- a cached `bench run` (efficientvit_m0 on OpenVINO, --duration 1 --warmup 0.2): wall time over its
  warm-up + measuring windows, and the overhead in seconds (target: at most 1.5 s);
- a 12-cell cached sweep (3 models x onnxruntime/openvino x batch 1, 2; duration_s 1, warmup_s 0.2):
  wall time over the sum of its cells' windows (target: at most 1.3x).

Every tree named with --tree LABEL=SRC (default: the installed effbench) runs in the same rounds,
interleaved (A, B, A, B ...), each with an export cache of its own that is warmed first, so that two
versions of effbench can be compared on one machine in one run:

    python benchmarks/cell_overhead.py --tree before=/path/to/old/src --tree after=src --rounds 3

Also printed: `bench --help` start-up and the median CI of 10^5 samples (the current tree's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MODELS = ["efficientvit_m0", "mobilenetv3_small_050", "efficientvit_m1"]
SWEEP = """models: [{models}]
backends: [onnxruntime, openvino]
batches: [1, 2]
duration_s: 1
warmup_s: 0.2
"""
CELL = ["--model", "efficientvit_m0", "--backend", "openvino", "--duration", "1", "--warmup", "0.2"]


def windows(rec: dict) -> float:
    """Warm-up + measuring seconds of a record (the same keys in old and new records)."""
    extra = rec.get("extra") or {}
    return float((extra.get("warmup") or {}).get("seconds") or 0) + float(extra.get("measure_s") or 0)


class Tree:
    def __init__(self, label: str, src: str | None, work: Path):
        self.label, self.work = label, work / label
        self.work.mkdir(parents=True)
        self.env = dict(os.environ, EFFBENCH_CACHE=str(self.work / "cache"))
        if src:
            self.env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), os.environ.get("PYTHONPATH", "")])
        (self.work / "sweep.yaml").write_text(SWEEP.format(models=", ".join(MODELS)))
        self.runs = 0

    def bench(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run([str(BIN / "bench"), *args], capture_output=True, text=True, env=self.env, cwd=self.work)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(
                f"[{self.label}] bench {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return wall, proc

    def cell(self) -> tuple[float, float]:
        self.runs += 1
        out = self.work / f"cell-{self.runs}.json"
        wall, _ = self.bench("run", *CELL, "--db", str(self.work / f"cell-{self.runs}.db"), "--out", str(out))
        (rec,) = json.loads(out.read_text())
        return wall, windows(rec)

    def sweep(self) -> tuple[float, float]:
        self.runs += 1
        db = str(self.work / f"sweep-{self.runs}.db")
        wall, _ = self.bench("sweep", str(self.work / "sweep.yaml"), "--db", db)
        _, proc = self.bench("results", "--db", db, "--format", "json", "--limit", "0")
        recs = json.loads(proc.stdout)
        assert len(recs) == 12 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
        return wall, sum(windows(r) for r in recs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", default=[], help="LABEL=SRC: a source tree to put first on PYTHONPATH")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="effbench-overhead-"))
    trees = [Tree(*spec.split("=", 1), work) for spec in args.tree] or [Tree("current", None, work)]
    print(f"warming the export caches of {', '.join(t.label for t in trees)} ...", flush=True)
    for t in trees:
        t.cell()
        t.sweep()
    cells: dict[str, list[tuple[float, float]]] = {t.label: [] for t in trees}
    sweeps: dict[str, list[tuple[float, float]]] = {t.label: [] for t in trees}
    for r in range(args.rounds):
        for t in trees:
            cells[t.label].append(t.cell())
        for t in trees:
            sweeps[t.label].append(t.sweep())
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    print(
        f"\n{'tree':<10} {'cached cell wall s':>18} {'windows s':>10} {'overhead s':>11} {'ratio':>6}   "
        f"{'12-cell sweep wall s':>20} {'windows s':>10} {'ratio':>6}"
    )
    for t in trees:
        cw = statistics.median(w for w, _ in cells[t.label])
        cwin = statistics.median(x for _, x in cells[t.label])
        sw = statistics.median(w for w, _ in sweeps[t.label])
        swin = statistics.median(x for _, x in sweeps[t.label])
        print(
            f"{t.label:<10} {cw:>18.2f} {cwin:>10.2f} {cw - cwin:>11.2f} {cw / cwin:>6.2f}   "
            f"{sw:>20.1f} {swin:>10.1f} {sw / swin:>6.2f}"
        )
    print(
        "\ntargets: cached-cell overhead <= 1.5 s; sweep <= 1.3x its windows "
        f"(median of {args.rounds} interleaved rounds; load average now {os.getloadavg()[0]:.1f})"
    )

    t0 = time.perf_counter()
    subprocess.run([str(BIN / "bench"), "--help"], capture_output=True, check=True)
    print(f"`bench --help`: {time.perf_counter() - t0:.2f} s (target < 0.5 s)")
    import numpy as np

    from effbench.core.stats import median_ci

    x = np.random.default_rng(0).lognormal(0, 0.3, 100_000)
    t0 = time.perf_counter()
    for _ in range(20):
        median_ci(x)
    print(f"median CI of 10^5 samples: {(time.perf_counter() - t0) / 20 * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
