"""How good a latency predictor is: shares within ±5% and ±10%, RMSPE, Spearman's rank correlation."""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

Values = Union[Sequence[float], np.ndarray]


def ranks(values: Values) -> np.ndarray:
    """Ranks with ties given their average rank (as Spearman's rho wants)."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            r[tied] = r[tied].mean()
    return r


def spearman(a: Values, b: Values) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def accuracy(predicted: Values, measured: Values, flops: Values | None = None) -> dict:
    """The statistics `bench predictor validate` stores and every prediction prints."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if len(p) == 0:
        return {"models": 0}
    err = (p - m) / m
    out = {
        "models": int(len(p)),
        "within_5": float(np.mean(np.abs(err) <= 0.05)),
        "within_10": float(np.mean(np.abs(err) <= 0.10)),
        "rmspe": float(math.sqrt(np.mean(err**2))),
        "mean_error": float(np.mean(err)),
        "max_abs_error": float(np.max(np.abs(err))),
        "spearman": spearman(p, m),
        "abs_error_p90": float(np.quantile(np.abs(err), 0.9)),
    }
    if flops is not None:
        out["flops_spearman"] = spearman(flops, m)
    return out


def remeasure_agreement(rounds: Sequence[Sequence[float]]) -> dict:
    """How well a measurement repeats itself: the noise floor no predictor can beat. Per model with
    two or more rounds: whether every round lies within ±10% of the model's median, and the spread
    (max - min) / median."""
    usable = [np.asarray(r, dtype=float) for r in rounds if len(r) >= 2]
    if not usable:
        return {"models": 0}
    dev = [float(np.max(np.abs(r / np.median(r) - 1))) for r in usable]
    spread = [float((r.max() - r.min()) / np.median(r)) for r in usable]
    return {
        "models": len(usable),
        "rounds_within_10": float(np.mean(np.array(dev) <= 0.10)),
        "median_spread": float(np.median(spread)),
        "max_spread": float(np.max(spread)),
    }


def describe(stats: dict | None) -> str:
    if not stats or not stats.get("models"):
        return "not validated (bench predictor validate)"
    rho = stats.get("spearman")
    text = (
        f"validated on {stats['models']} held-out models: {stats['within_10']:.0%} within ±10%, "
        f"{stats['within_5']:.0%} within ±5%, RMSPE {stats['rmspe']:.1%}, Spearman ρ "
        f"{'-' if rho is None else f'{rho:.3f}'}"
    )
    if stats.get("flops_spearman") is not None:
        text += f" (FLOPs alone ρ {stats['flops_spearman']:.3f})"
    noise = stats.get("remeasure") or {}
    if noise.get("models"):
        text += (
            f"; re-measuring: {noise['rounds_within_10']:.0%} of models repeat within ±10%, median spread "
            f"{noise['median_spread']:.1%}"
        )
    return text


def describe_unseen(cv: dict | None) -> str | None:
    """The build's own estimate for models it never saw (crossval), or None without one."""
    if not cv or not cv.get("models"):
        return None
    return (
        f"on unseen zoo models ({cv['folds']}-fold from the build's data): {cv['within_10']:.0%} within ±10%, "
        f"RMSPE {cv['rmspe']:.1%}"
    )
