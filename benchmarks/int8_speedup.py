"""int8 over fp32 latency on OpenVINO and ONNX Runtime, interleaved, on the machine this runs on.

For each model (random weights, generated calibration: the latency is representative, the accuracy is
not) it builds the fp32 ONNX / IR artifacts and their int8 versions (NNCF; ONNX Runtime QDQ, per-channel,
minmax) through the artifact cache, opens the four core sessions side by side and measures them in
rounds, A B C D A B C D ..., with the measurement core's own loop (warm-up, minimum duration and
iterations), so drift on a shared machine hits every side alike. It prints per runtime the int8/fp32
ratio of medians with its block-bootstrap 95% CI (the gate's statistics), the share of MACs that ran
int8, and the top-1 agreement of int8 with fp32 on generated images; then what int8 gains on this CPU
and why, from its instruction-set flags.

    python benchmarks/int8_speedup.py [--models resnet50,mobilenetv3_large_100,efficientvit_m5]
                                      [--rounds 3] [--seconds 2] [--threads N] [--calib-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from effbench.accuracy import int8_coverage as cov
from effbench.accuracy import quantize as q
from effbench.accuracy.calibration import calibration_set
from effbench.accuracy.data import generated_images
from effbench.accuracy.evaluate import evaluate
from effbench.accuracy.preprocess import resolve_preprocess
from effbench.backends.onnxruntime_backend import cpu_flags
from effbench.backends.registry import get_backend
from effbench.core.runtimes import open_session
from effbench.core.scenarios import run_scenario
from effbench.core.settings import MeasureSettings
from effbench.export.cache import get_or_build
from effbench.export.pipeline import ModelSource, onnx_artifact, openvino_artifact
from effbench.gate.stats import compare_samples
from effbench.models.registry import resolve

INT8_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "avx512_bf16")


def cpu_features() -> dict:
    from effbench.core.fingerprint import cpu_model

    flags = cpu_flags()
    return {"name": cpu_model(), "flags": {f: f in flags for f in INT8_FLAGS}}


def explain(features: dict) -> str:
    f = features["flags"]
    if f["amx_int8"]:
        return (
            "AMX-INT8 (and AVX-512 VNNI) present: oneDNN (OpenVINO) runs int8 convolutions and matrix "
            "products on the AMX tiles (TDPBUSD: 1024 int8 MACs per instruction against 16 fp32 FMAs of an "
            "AVX-512 FMA), and ONNX Runtime's MLAS uses VNNI/AMX kernels; large compute-bound layers gain "
            "most, depthwise and memory-bound layers (and Q/DQ reorders between fp32 islands) gain little."
        )
    if f["avx512_vnni"] or f["avx_vnni"]:
        return (
            "VNNI present (no AMX): VPDPBUSD does 4 int8 multiply-adds per 32-bit lane in one instruction, "
            "about 4x the fp32 FMA rate per vector; compute-bound layers approach 2-3x, memory-bound ones "
            "gain from the 4x smaller weights and activations."
        )
    if f["avx2"]:
        return (
            "AVX2 without VNNI: int8 dot products take VPMADDUBSW + VPMADDWD + VPADDD (three instructions, "
            "and u8*s8 pairs saturate at 16 bits), so int8 compute is at best ~1.3-2x fp32 FMA; most of the "
            "gain comes from 4x smaller tensors, and small or depthwise-heavy models may not gain at all."
        )
    return "no AVX2: int8 runs on generic kernels; expect little or no gain."


def build(name: str, calib_size: int):
    spec = resolve(name)
    src = ModelSource(spec)
    shape = (1, *spec.input_shape)
    onnx_art = onnx_artifact(src, shape)
    ir_art = openvino_artifact(src, shape)
    pre = resolve_preprocess(shape, timm_model=src.module() if spec.kind == "timm" else None)
    calib = calibration_set(None, pre, size=calib_size)
    ov_opts = get_backend("openvino").parse_options({})
    ort_opts = get_backend("onnxruntime").parse_options({})
    t0 = time.perf_counter()
    ov_int8 = get_or_build(
        "openvino",
        q.quantization_parts(get_backend("openvino"), calib, ov_opts, ir_art.key),
        "model.xml",
        lambda t: q.quantize_openvino(ir_art.path, t, calib, 1, ov_opts),
    )
    t1 = time.perf_counter()
    ort_int8 = get_or_build(
        "onnx",
        q.quantization_parts(get_backend("onnxruntime"), calib, ort_opts, onnx_art.key),
        "model.onnx",
        lambda t: q.quantize_onnxruntime(onnx_art.path, t, calib, 1, ort_opts),
    )
    t2 = time.perf_counter()
    return (
        spec,
        pre,
        {
            ("openvino", "fp32"): ir_art.path,
            ("openvino", "int8"): ov_int8.path,
            ("onnxruntime", "fp32"): onnx_art.path,
            ("onnxruntime", "int8"): ort_int8.path,
        },
        {
            "onnx": onnx_art.path,
            "nncf_s": t1 - t0 if not ov_int8.cached else 0.0,
            "ort_s": t2 - t1 if not ort_int8.cached else 0.0,
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet50,mobilenetv3_large_100,efficientvit_m5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--calib-size", type=int, default=64)
    ap.add_argument("--agreement-images", type=int, default=64)
    a = ap.parse_args()
    feats = cpu_features()
    print(f"CPU: {feats['name']}  threads={a.threads}  rounds={a.rounds} x {a.seconds:g} s per side")
    print("int8-relevant flags: " + " ".join(f"{k}{'+' if v else '-'}" for k, v in feats["flags"].items()))
    ratios: dict[str, list[float]] = {"openvino": [], "onnxruntime": []}
    for name in a.models.split(","):
        spec, pre, paths, built = build(name, a.calib_size)
        shape = [1, *spec.input_shape]
        sessions = {}
        for (runtime, precision), path in paths.items():
            settings = MeasureSettings(
                runtime=runtime,
                input_shape=shape,
                precision=precision,
                threads=a.threads,
                warmup_s=0.5,
                warmup_iters=5,
                duration_s=a.seconds,
                min_iters=50,
            )
            sessions[(runtime, precision)] = (open_session(runtime, str(path), settings), settings)
        agree_imgs = generated_images(a.agreement_images, pre, seed=1)
        preds, graphs = {}, {}
        for key, (session, _) in sessions.items():
            preds[key] = evaluate(session, agree_imgs, batch_size=1)
            graphs[key] = session.runtime_graph()
        x = next(iter(agree_imgs.batches(1)))[0]
        samples: dict[tuple, list[float]] = {k: [] for k in sessions}
        for _ in range(a.rounds):
            for key, (session, settings) in sessions.items():
                session.bind({"input": x})
                m = run_scenario(session, settings)
                samples[key].extend((m.samples_ns / 1e6).tolist())
        print(
            f"\n{name} ({'x'.join(map(str, shape))}; quantised in NNCF {built['nncf_s']:.0f} s, "
            f"ORT {built['ort_s']:.0f} s; 0 s = cached)"
        )
        print(
            f"  {'runtime':<12} {'fp32 ms':>9} {'int8 ms':>9} {'int8/fp32 [95% CI]':>24} {'ran':>5} "
            f"{'int8 MACs':>10} {'top-1 agree':>12}"
        )
        for runtime in ("openvino", "onnxruntime"):
            fp, i8 = samples[(runtime, "fp32")], samples[(runtime, "int8")]
            s = compare_samples(fp, i8)
            ratios[runtime].append(s.ratio)
            if runtime == "openvino":
                share = cov.int8_macs_share(built["onnx"], cov.int8_layers_openvino(graphs[(runtime, "int8")]))
            else:
                int8_path = paths[(runtime, "int8")]
                share = cov.int8_macs_share(int8_path, cov.int8_nodes_onnxruntime(int8_path))
            agree = float(np.mean(preds[(runtime, "fp32")].top1 == preds[(runtime, "int8")].top1))
            ran = sessions[(runtime, "int8")][0].precision_ran
            print(
                f"  {runtime:<12} {s.median_baseline:>9.3f} {s.median_current:>9.3f} "
                f"{s.ratio:>8.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}] {ran:>5} "
                f"{100 * share['int8_macs_share']:>9.1f}% {100 * agree:>11.1f}%"
            )
        for session, _ in sessions.values():
            session.close()
    print()
    for runtime, rs in ratios.items():
        if rs:
            gm = statistics.geometric_mean(rs)
            print(f"geometric mean int8/fp32 on {runtime}: {gm:.3f} (int8 {1 / gm:.2f}x faster)")
    print("\nWhy, on this CPU: " + explain(feats))
    print(
        "Top-1 agreement is on generated images with random weights: near-tied logits flip easily, so it is a "
        "lower bound on what a trained model keeps; measure accuracy with `bench run --eval DIR`."
    )


if __name__ == "__main__":
    main()
