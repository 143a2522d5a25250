"""What telemetry around a cell costs: `bench run` of the null backend (--duration 0.5) with and
without `--telemetry`, interleaved, and the ratio of their cell wall times (target: at most 1.05x,
i.e. the probes' readings before and after a cell add no more than a few hundredths of a second).

    python benchmarks/telemetry_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_run

CELL = ["--model", "efficientvit_m0", "--backend", "null", "--duration", "0.5", "--warmup", "0.1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    walls: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for label, flag in (("on", "--telemetry"), ("off", "--no-telemetry")):
            rec = bench_run(*CELL, flag)
            walls[label].append(rec["timing"]["cell_wall_s"])
    on, off = statistics.median(walls["on"]), statistics.median(walls["off"])
    print(f"cell wall, median of {args.rounds}: telemetry on {on:.3f} s, off {off:.3f} s")
    print(f"ratio on/off: {on / off:.3f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
