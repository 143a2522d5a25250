"""Result records with `accuracy` blocks computed by the real accuracy code from simulated outcomes."""

from __future__ import annotations

import numpy as np

from effbench.accuracy.data import PreparedImages
from effbench.accuracy.evaluate import Predictions, accuracy_record
from effbench.accuracy.preprocess import Preprocess
from tests.gate.records import record

CLASSES = 10


def images(n: int, dataset_hash: str = "set-a", seed: int = 0) -> PreparedImages:
    labels = np.random.default_rng(seed).integers(0, CLASSES, n)
    return PreparedImages(
        np.zeros((n, 1, 1, 3), np.uint8),
        labels,
        [f"{i}.png" for i in range(n)],
        dataset_hash,
        Preprocess((1, 1)),
        "/data/val",
        "imagefolder",
    )


def predictions(imgs: PreparedImages, correct: np.ndarray) -> Predictions:
    """Top-5 whose first class is the label exactly where `correct`."""
    labels = imgs.labels
    first = np.where(correct, labels, (labels + 1) % CLASSES)
    rest = [(first + k) % CLASSES for k in range(1, 5)]
    return Predictions(np.stack([first, *rest], axis=1), CLASSES, 0.5)


def outcomes(n: int, accuracy: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < accuracy


def accuracy_block(imgs: PreparedImages, correct: np.ndarray, reference: np.ndarray | None = None) -> dict:
    ref = predictions(imgs, reference) if reference is not None else None
    return accuracy_record(
        predictions(imgs, correct),
        imgs,
        reference=ref,
        reference_info={"runtime": "torch", "precision": "fp32"} if ref else None,
    )


def measured(model: str, backend: str, precision: str, latency_ms: float, block: dict | None, **kw) -> dict:
    from tests.gate.records import samples

    rec = record(
        samples(latency_ms, seed=int(latency_ms * 1000) % 97),
        model=model,
        backend=backend,
        precision=precision,
        config_hash=f"{model}-{backend}-{precision}",
        **kw,
    )
    if block is not None:
        rec["accuracy"] = block
    return rec
