"""What the portable lifeline costs a measurement: the thread that checks the parent once a second
(core/lifeline.py; on Linux the kernel's parent-death signal is used instead, and nothing runs).

Each round measures the core's timing loop (core/timing.measure on a session whose inference is a
64x64 matrix product) in a fresh process, without a watcher and with one, interleaved (A, B, A, B ...);
a third arm wakes the watcher every millisecond, a thousand times as often, to show what its wake-ups
cost at all. Printed: per arm, the median of the rounds' medians and p99s, and their ratios to no watcher.

    python benchmarks/lifeline_overhead.py [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

ROUND = """
import json, os, sys
import numpy as np
from effbench.core import lifeline
from effbench.core.session import Session
from effbench.core.timing import measure, warmup

poll = float(sys.argv[1])
if poll > 0:
    lifeline._watch(os.getppid(), poll)
a = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)


class MatMul(Session):
    def __init__(self):
        pass

    def run(self):
        a @ a


s = MatMul()
warmup(s, 0.3, 50)
samples, _, _, _ = measure(s, float(sys.argv[2]), 100, max_iters=10**7)
print(json.dumps({"median_us": float(np.median(samples)) / 1e3, "p99_us": float(np.percentile(samples, 99)) / 1e3}))
"""
ARMS = {"no watcher": 0.0, "watcher, 1 s": 1.0, "watcher, 1 ms": 0.001}


def one_round(poll_s: float, seconds: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", ROUND, str(poll_s), str(seconds)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    got: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for _ in range(args.rounds):
        for arm, poll in ARMS.items():
            got[arm].append(one_round(poll, args.seconds))
    base = {k: statistics.median(r[k] for r in got["no watcher"]) for k in ("median_us", "p99_us")}
    print(f"{'arm':16s} {'median µs':>10s} {'ratio':>7s} {'p99 µs':>9s} {'ratio':>7s}   ({args.rounds} rounds)")
    for arm in ARMS:
        med = statistics.median(r["median_us"] for r in got[arm])
        p99 = statistics.median(r["p99_us"] for r in got[arm])
        print(f"{arm:16s} {med:10.2f} {med / base['median_us']:7.3f} {p99:9.2f} {p99 / base['p99_us']:7.3f}")


if __name__ == "__main__":
    main()
