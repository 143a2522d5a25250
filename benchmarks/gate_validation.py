"""Does the regression gate tell a real slowdown from run-to-run noise? Real runs, real verdicts.

Each round measures, through the `bench` CLI as a subprocess, the null backend busy-waiting
BUSY_US per inference twice (A1, A2) and busy-waiting SLOW_US once (B), in a rotating order so
neither configuration always runs first. Then

  (a) A1 against A2, the same configuration against itself: the gate must not say "regression";
  (b) A1 against B, a real slowdown (230 vs 200 us is about +15%): the gate must say "regression".

Prints every comparison and both counts; exits 1 when (a) has any regression or (b) misses more
than one in twenty. About 10 s per run (mostly importing torch/timm), so ~10 min for 20 rounds.

    .venv/bin/python benchmarks/gate_validation.py [--rounds 20] [--duration 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from effbench.gate.cells import pooled_cells
from effbench.gate.verdict import FAILING, REGRESSION, CellVerdict, compare


def bench_executable() -> str:
    beside = Path(sys.executable).with_name("bench")
    found = str(beside) if beside.exists() else shutil.which("bench")
    if not found:
        sys.exit("no `bench` command: install the project (pip install -e .) into this environment")
    return found


def measure(bench: str, busy_us: int, duration: float, out: Path) -> list[dict]:
    cmd = [
        bench,
        "run",
        "--model",
        "timm:resnet18",
        "--backend",
        "null",
        "--opt",
        f"busy_us={busy_us}",
        "--duration",
        str(duration),
        "--warmup",
        "0.2",
        "--no-parity",
        "--no-store",
        "--in-process",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        sys.exit(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(out.read_text())


def judge(base: list[dict], cur: list[dict], threshold: float, alpha: float) -> CellVerdict:
    (cell,) = compare(pooled_cells(base), pooled_cells(cur), threshold=threshold, alpha=alpha).cells
    return cell


def line(name: str, c: CellVerdict) -> str:
    ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None else ""
    p = f"p={c.p_value:.2g}" if c.p_value is not None else ""
    return f"  {name}: ratio {c.ratio or float('nan'):.3f} {ci:17} {p:9} -> {c.verdict} ({c.reason})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--busy-us", type=int, default=200)
    ap.add_argument("--slow-us", type=int, default=230)
    ap.add_argument("--duration", type=float, default=1.0, help="measuring seconds per run")
    ap.add_argument("--threshold", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=0.01)
    args = ap.parse_args()

    bench = bench_executable()
    same_flagged = slow_flagged = 0
    with tempfile.TemporaryDirectory(prefix="gate-validation-") as tmp:
        for i in range(args.rounds):
            runs = [("A1", args.busy_us), ("A2", args.busy_us), ("B", args.slow_us)]
            order = runs[i % 3 :] + runs[: i % 3]
            rec = {name: measure(bench, us, args.duration, Path(tmp) / f"{i}-{name}.json") for name, us in order}
            same = judge(rec["A1"], rec["A2"], args.threshold, args.alpha)
            slow = judge(rec["A1"], rec["B"], args.threshold, args.alpha)
            same_flagged += same.verdict in FAILING
            slow_flagged += slow.verdict == REGRESSION
            print(
                f"round {i + 1:2d} (order {' '.join(n for n, _ in order)}, "
                f"{same.n_baseline} / {same.n_current} / {slow.n_current} samples)"
            )
            print(line(f"(a) {args.busy_us} vs {args.busy_us} us", same))
            print(line(f"(b) {args.busy_us} vs {args.slow_us} us", slow), flush=True)

    n = args.rounds
    print()
    print(f"(a) same configuration: {same_flagged} of {n} comparisons flagged a regression (want 0)")
    print(
        f"(b) +{args.slow_us / args.busy_us - 1:.0%} busy-wait: {slow_flagged} of {n} comparisons "
        f"flagged a regression (want >= {n - n // 20})"
    )
    return 0 if same_flagged == 0 and slow_flagged >= n - n // 20 else 1


if __name__ == "__main__":
    sys.exit(main())
