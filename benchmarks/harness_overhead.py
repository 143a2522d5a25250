"""Per-iteration overhead of the harness, from the `null` backend (target <= 1 microsecond).

Two figures: the median null sample (what the timing loop adds to every measured latency), and the
loop's wall time per iteration (what one iteration of the harness costs in all).
"""

from __future__ import annotations

from _common import bench_run


def main() -> None:
    for r in range(3):
        rec = bench_run(
            "--model",
            "efficientvit_m0",
            "--backend",
            "null",
            "--duration",
            "3",
            "--max-iters",
            "5000000",
            "--no-parity",
        )
        lat = rec["latency_ms"]
        per_iter_us = rec["extra"]["measure_s"] / rec["iterations"] * 1e6
        print(
            f"round {r + 1}: {rec['iterations']} iterations; median sample {lat['median'] * 1e6:.0f} ns, "
            f"p99 {lat['p99'] * 1e6:.0f} ns; loop wall time per iteration {per_iter_us * 1e3:.0f} ns "
            f"(target <= 1000 ns)"
        )


if __name__ == "__main__":
    main()
