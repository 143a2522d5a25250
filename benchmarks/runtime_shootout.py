"""The same models on ONNX Runtime, OpenVINO, LiteRT (XNNPACK) and ExecuTorch (XNNPACK), fp32 and int8,
one and two threads, measured interleaved on the machine this runs on.

Every cell is prepared once (exports and int8 artifacts through the artifact cache; int8 calibrates on
generated images: its latency is representative, its accuracy is not), then measured in rounds: each
round runs every cell once, each in its own worker process (ExecuTorch sizes its thread pool once per
process), so drift on a shared machine hits every runtime alike. Per model, precision and thread count
it prints each runtime's median over the rounds' medians and its ratio to the fastest.

    python benchmarks/runtime_shootout.py [--models mobilenetv3_large_100,efficientvit_m0,mobilenetv3_small_050]
                                          [--backends onnxruntime,openvino,litert,executorch]
                                          [--precisions fp32,int8] [--threads 1,2] [--rounds 3] [--seconds 1]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from effbench.harness.config import RunConfig
from effbench.harness.prepare import check_cell, prepare
from effbench.harness.scheduler import run_cells

MODELS = "mobilenetv3_large_100,efficientvit_m0,mobilenetv3_small_050"
BACKENDS = "onnxruntime,openvino,litert,executorch"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--backends", default=BACKENDS)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--calib-size", type=int, default=32)
    args = ap.parse_args()
    cells = [
        RunConfig(
            model=model,
            backend=backend,
            precision=precision,
            threads=int(threads),
            duration_s=args.seconds,
            warmup_s=0.3,
            calib_size=args.calib_size,
        )
        for model in args.models.split(",")
        for precision in args.precisions.split(",")
        for threads in args.threads.split(",")
        for backend in args.backends.split(",")
    ]
    prepared, ready = [], []
    for cfg in cells:
        print(f"preparing {cfg.model} {cfg.backend} {cfg.precision} x{cfg.threads} ...", flush=True)
        try:
            prepared.append(prepare(check_cell(cfg)))
            ready.append(cfg)
        except Exception as e:  # a runtime that cannot take the model is reported, the others go on
            print(f"  skipped: {str(e).splitlines()[0][:200]}")
    medians: dict[tuple, list[float]] = defaultdict(list)
    placement: dict[tuple, float | None] = {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", flush=True)
        for cfg, res in zip(ready, run_cells(ready, prepared=prepared, show_progress=False)):
            key = (cfg.model, cfg.precision, cfg.threads, cfg.backend)
            if res.status == "ok" and res.latency is not None:
                medians[key].append(res.latency.median)
                share = (res.runtime.get("placement") or {}).get("fallback_share")
                placement[key] = None if share is None else 1.0 - share
            else:
                print(f"  {key}: {res.status}: {res.error}")
    groups: dict[tuple, dict[str, float]] = defaultdict(dict)
    for (model, precision, threads, backend), values in medians.items():
        groups[(model, precision, threads)][backend] = statistics.median(values)
    for (model, precision, threads), by_backend in sorted(groups.items()):
        fastest = min(by_backend.values())
        print(f"\n{model}  {precision}  {threads} thread(s)   (median of {args.rounds} rounds' medians)")
        for backend, ms in sorted(by_backend.items(), key=lambda kv: kv[1]):
            share = placement.get((model, precision, threads, backend))
            on = f"   {share * 100:5.1f}% of MACs on the requested delegate" if share is not None else ""
            print(f"  {backend:<12} {ms:9.3f} ms   x{ms / fastest:5.2f} of the fastest{on}")


if __name__ == "__main__":
    main()
