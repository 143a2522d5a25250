"""The calibration set of a post-training quantisation: `--calib DIR` (an ImageFolder or a flat folder
of images, `--calib-size N` of them, balanced across classes) or, without one, generated images.

Its hash (the images' content and their preprocessing) goes into the quantised artifact's cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from effbench.accuracy.data import PreparedImages, Progress, find_images, generated_images, prepare_images
from effbench.accuracy.preprocess import Preprocess
from effbench.errors import UsageError

DEFAULT_CALIB_SIZE = 300
GENERATED_WARNING = (
    "int8 calibrated on generated images (no --calib): its latency is representative, its "
    "accuracy is not; pass --calib DIR with a few hundred real images"
)


@dataclass
class CalibrationSet:
    images: PreparedImages
    source: str  # "dir" | "generated"

    @property
    def hash(self) -> str:
        """What the quantised artifact depends on: the images and how they were preprocessed."""
        blob = json.dumps(
            {"images": self.images.dataset_hash, "preprocess": self.images.preprocess.to_dict()}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def warning(self) -> str | None:
        return GENERATED_WARNING if self.source == "generated" else None

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Full batches of the model's fixed batch size (the last one wraps round to the first images)."""
        for batch, _ in self.images.batches(batch_size, wrap=True):
            yield batch

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self.images) // batch_size)

    def record(self) -> dict[str, Any]:
        """The result's quantization.calibration block."""
        out = {
            "source": self.source,
            "path": self.images.root,
            "images": len(self.images),
            "hash": self.hash,
            "preprocess": self.images.preprocess.to_dict(),
        }
        if self.images.skipped:
            out["skipped_images"] = len(self.images.skipped)
        if self.warning:
            out["warning"] = self.warning
        return out


def calibration_set(
    calib: str | Path | None,
    preprocess: Preprocess,
    *,
    size: int = DEFAULT_CALIB_SIZE,
    skip_bad_images: bool = False,
    progress: Progress | None = None,
) -> CalibrationSet:
    """`--calib DIR --calib-size N`, checked and decoded now (before any measuring)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UsageError(f"--calib-size {size!r}: give a positive number of images (default {DEFAULT_CALIB_SIZE})")
    if calib is None:
        return CalibrationSet(generated_images(size, preprocess), "generated")
    images = find_images(calib, option="--calib", need_labels=False)
    prepared = prepare_images(images, preprocess, limit=size, skip_bad_images=skip_bad_images, progress=progress)
    return CalibrationSet(prepared, "dir")
