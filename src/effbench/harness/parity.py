"""Compare a backend's outputs with the PyTorch reference on the same input.

Tolerances are relative to the reference outputs' scale (the largest |logit|). Random timm models have
seeded non-zero normalisation layers (models.loaders.RANDOM_NORMS), so their logits have a trained
model's scale (std ~0.05-0.6) rather than timm's ~1e-5; relative tolerances hold for both.
"""

from __future__ import annotations

import numpy as np

from effbench.harness.result import Parity

# (max abs error / max |reference|, minimum cosine similarity) per precision that ran
TOLERANCES = {
    "fp32": (1e-3, 0.9999),
    "tf32": (1e-2, 0.999),
    "bf16": (1e-1, 0.99),  # seeded norms give trained-scale logits: efficientvit_m0 on OpenVINO bf16 6.8e-2
    "fp16": (1e-2, 0.999),
    "int8": (2e-1, 0.95),
}


def compare(
    outputs: list[np.ndarray], reference: list[np.ndarray], precision: str, reference_name: str = "torch"
) -> Parity:
    out = np.asarray(outputs[0], dtype=np.float64)
    ref = np.asarray(reference[0], dtype=np.float64)
    if out.shape != ref.shape:
        return Parity(float("inf"), float("inf"), 0.0, 0.0, False, {}, reference_name)
    abs_err = float(np.max(np.abs(out - ref))) if out.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else float("inf"))
    a, b = out.reshape(out.shape[0], -1), ref.reshape(ref.shape[0], -1)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(np.sum(a * b) / denom) if denom > 0 else (1.0 if abs_err == 0 else 0.0)
    top1 = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1))) if a.shape[1] > 1 else 1.0
    rel_tol, cos_tol = TOLERANCES.get(precision, TOLERANCES["fp32"])
    ok = bool(rel_err <= rel_tol and cosine >= cos_tol)
    return Parity(abs_err, rel_err, cosine, top1, ok, {"max_rel_err": rel_tol, "cosine": cos_tol}, reference_name)
