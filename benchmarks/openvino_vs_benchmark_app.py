"""effbench versus OpenVINO's benchmark_app on the same IR and thread count, interleaved.

Latency: `bench run --backend openvino --threads T` against `benchmark_app -hint latency`
(ratio of medians, target within 2%). Throughput: `bench run --scenario throughput` against
`benchmark_app -hint throughput` (images/s ratio, target >= 0.98). Runs A B A B ... so that the
machine's drift hits both sides alike; prints the ratio per round and their geometric mean.

    python benchmarks/openvino_vs_benchmark_app.py [--models efficientvit_m5,...] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics

from _common import bench_run, benchmark_app, geomean

OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def naive_loop_median_ms(ir: str, precision: str, threads: int, seconds: float) -> float:
    """What a hand-written loop measures: `request.infer(inputs)` per iteration, the inputs dict
    dispatched (and copied) and the outputs dict built inside the timed region."""
    import time

    import numpy as np
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        ir,
        "CPU",
        {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": OV_PRECISION[precision],
        },
    )
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(tuple(compiled.inputs[0].shape), dtype=np.float32)
    for _ in range(20):
        request.infer({0: x})
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        request.infer({0: x})
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="efficientvit_m5")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--scenarios", default="latency")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = ap.parse_args()
    common = ["--threads", str(a.threads), "--duration", str(a.seconds), "--no-parity", "--opt", "analysis=0"]
    print(f"threads={a.threads}  seconds per side={a.seconds}  rounds={a.rounds}")
    for model in a.models.split(","):
        for precision in a.precisions.split(","):
            for scenario in a.scenarios.split(","):
                first = bench_run(
                    "--model", model, "--backend", "openvino", "--precision", precision, "--scenario", scenario, *common
                )
                ir = first["extra"]["artifact_path"]
                hint = "latency" if scenario == "latency" else "throughput"
                ba_args = [
                    "-m",
                    ir,
                    "-d",
                    "CPU",
                    "-hint",
                    hint,
                    "-infer_precision",
                    OV_PRECISION[precision],
                    "-t",
                    str(int(a.seconds)),
                ]
                ratios = []
                for r in range(a.rounds):
                    ours = bench_run(
                        "--model",
                        model,
                        "--backend",
                        "openvino",
                        "--precision",
                        precision,
                        "--scenario",
                        scenario,
                        *common,
                    )
                    theirs = benchmark_app(*ba_args)
                    if scenario == "latency":
                        ratio = ours["latency_ms"]["median"] / theirs["median_ms"]
                        naive = naive_loop_median_ms(ir, precision, a.threads, a.seconds)
                        detail = (
                            f"effbench {ours['latency_ms']['median']:.3f} ms  "
                            f"benchmark_app {theirs['median_ms']:.3f} ms"
                            f"  naive infer(inputs) loop {naive:.3f} ms (x{naive / theirs['median_ms']:.3f})"
                        )
                    else:
                        ratio = ours["throughput_per_s"] / theirs["fps"]
                        detail = f"effbench {ours['throughput_per_s']:.1f} img/s  benchmark_app {theirs['fps']:.1f} FPS"
                    ratios.append(ratio)
                    print(
                        f"{model} {precision} {scenario} round {r + 1}: {detail}  ratio {ratio:.4f}"
                        f"  (ran {ours['precision_ran']})"
                    )
                what = (
                    "median latency effbench/benchmark_app (target <= 1.02)"
                    if scenario == "latency"
                    else "throughput effbench/benchmark_app (target >= 0.98)"
                )
                print(
                    f"==> {model} {precision} {scenario}: {what}: median {statistics.median(ratios):.4f}"
                    f"  geomean {geomean(ratios):.4f}  min {min(ratios):.4f}  max {max(ratios):.4f}\n"
                )


if __name__ == "__main__":
    main()
