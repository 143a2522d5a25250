"""Synthetic result records with known latency distributions."""

from __future__ import annotations

import numpy as np

from effbench.core.stats import summarize
from effbench.harness.result import Result

ENV = {
    "cpu_model": "Test CPU 9000",
    "gpu": None,
    "os": "Linux",
    "python": "3.11.9",
    "versions": {"torch": "2.4.0", "onnxruntime": "1.18.0"},
}


def samples(median: float = 1.0, *, cv: float = 0.02, n: int = 2000, seed: int = 0) -> list[float]:
    """Normal latencies (ms) with the given median and coefficient of variation."""
    rng = np.random.default_rng(seed)
    return list(np.abs(rng.normal(median, cv * median, n)))


def record(
    xs=None,
    *,
    model: str = "resnet18",
    backend: str = "null",
    status: str = "ok",
    config_hash: str | None = None,
    env: dict | None = None,
    **kw,
) -> dict:
    xs = samples() if xs is None and status == "ok" else (xs or [])
    return Result.from_dict(
        {
            "model": model,
            "backend": backend,
            "status": status,
            "samples_ms": [float(x) for x in xs],
            "latency_ms": summarize(xs).to_dict() if len(xs) else None,
            "config_hash": config_hash or f"hash-{model}-{backend}",
            "env": dict(ENV if env is None else env),
            **kw,
        }
    ).to_dict()
