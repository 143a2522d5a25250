"""How well a predictor built here predicts models it never saw, against the issue's targets.

Builds (or resumes) the predictor for a backend on this CPU from the default zoo (model cards plus
efficient timm models, at their own resolution and 160 px), then measures every held-out model
(never used in building) and compares: share within ±5% and ±10%, RMSPE, Spearman ρ, and FLOPs-only
ρ on the same models as the baseline to beat. Targets: ≥ 90% within ±10%, ρ ≥ 0.95, build ≤ 20 min.

    python benchmarks/predictor_accuracy.py [--backend openvino] [--budget 20] [--fresh]
                                            [--held-out a,b,c] [--state DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--budget", type=float, default=20.0, help="build budget, minutes")
    ap.add_argument("--fresh", action="store_true", help="measure every kernel again")
    ap.add_argument("--held-out", default=None, help="comma-separated held-out models (default: the held-out list)")
    ap.add_argument("--state", default=None, help="EFFBENCH_STATE for the predictor file")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each held-out model's measurement")
    args = ap.parse_args()
    if args.state:
        os.environ["EFFBENCH_STATE"] = args.state

    from effbench.predict import zoo
    from effbench.predict.build import build, validate
    from effbench.predict.stats import describe, describe_unseen

    t0 = time.perf_counter()
    report = build(args.backend, "cpu", zoo.build_zoo(), zoo.RESOLUTIONS, args.budget * 60, print, fresh=args.fresh)
    build_s = time.perf_counter() - t0
    held = args.held_out.split(",") if args.held_out else zoo.HELD_OUT
    stats = validate(report.predictor, held, print, rounds=args.rounds)
    print()
    print(f"{'model':28s} {'predicted ms':>12s} {'measured ms':>12s} {'error':>8s} {'GFLOPs':>8s}")
    for r in sorted(stats["results"], key=lambda r: r["measured_ms"]):
        err = r["predicted_ms"] / r["measured_ms"] - 1
        print(
            f"{r['model']:28s} {r['predicted_ms']:12.3f} {r['measured_ms']:12.3f} {err:+8.1%} {r['flops'] / 1e9:8.3f}"
        )
    loo = report.predictor.data["correction"].get("loo") or {}
    print()
    print(
        f"build: {build_s / 60:.1f} min this run ({report.predictor.data['built']['seconds'] / 60:.1f} min recorded), "
        f"{report.kernels_measured} kernels, {report.models_measured} zoo model-resolutions, "
        f"{len(report.failed)} skipped, complete: {report.complete}"
    )
    if loo:
        print(f"zoo leave-one-out: {loo['within_10']:.0%} within ±10%, RMSPE {loo['rmspe']:.1%}")
    unseen = describe_unseen(report.predictor.data["correction"].get("unseen"))
    if unseen:
        print(unseen)
    print(describe(stats))
    rho, flops_rho = stats.get("spearman"), stats.get("flops_spearman")
    checks = [
        ("held-out models >= 20", stats["models"] >= 20),
        ("within ±10% >= 90%", stats.get("within_10", 0) >= 0.9),
        ("Spearman rho >= 0.95", rho is not None and rho >= 0.95),
        ("build <= 20 min", report.predictor.data["built"]["seconds"] <= 20 * 60),
        ("beats FLOPs-only rho", rho is not None and flops_rho is not None and rho > flops_rho),
    ]
    for name, ok in checks:
        print(f"  {'met ' if ok else 'MISSED'}  {name}")


if __name__ == "__main__":
    main()
