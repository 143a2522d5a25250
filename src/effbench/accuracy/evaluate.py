"""Top-1 / top-5 on the very session that was timed, the fp32 reference on the same images, and the
record's `accuracy` block.

`evaluate(session, images, batch_size=N)` needs only numpy and the core Session interface, so it runs
in the measuring process (the cell's `after` hook), on the device agent too. The session was loaded for
one batch shape: the last partial batch is padded and the padding's outputs are dropped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from effbench.accuracy import metrics
from effbench.accuracy.data import PreparedImages, Progress
from effbench.errors import UsageError

TOP_K = 5


@dataclass
class Predictions:
    """The k best classes of every image, best first (ties: the lower class index first)."""

    topk: np.ndarray  # n x k int64
    num_outputs: int
    seconds: float

    @property
    def top1(self) -> np.ndarray:
        return self.topk[:, 0]

    def correct(self, labels: np.ndarray, k: int = 1) -> np.ndarray:
        return np.any(self.topk[:, :k] == np.asarray(labels)[:, None], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists: what an after-hook returns through a worker pipe or the agent's JSON."""
        return {"topk": self.topk.tolist(), "num_outputs": self.num_outputs, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Predictions:
        return cls(
            np.asarray(d["topk"], np.int64).reshape(len(d["topk"]), -1), int(d["num_outputs"]), float(d["seconds"])
        )


def topk_of(logits: np.ndarray, k: int = TOP_K) -> np.ndarray:
    scores = np.asarray(logits, np.float64).reshape(logits.shape[0], -1)
    return np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]


def predict(
    run_batch: Callable[[np.ndarray], np.ndarray],
    images: PreparedImages,
    batch_size: int,
    *,
    pad: bool = True,
    progress: Progress | None = None,
) -> Predictions:
    """Run every image through `run_batch(batch) -> logits` (batch x classes)."""
    if len(images) == 0:
        raise UsageError("no images to evaluate")
    rows, num_outputs = [], 0
    t0 = time.perf_counter()
    done = 0
    for batch, valid in images.batches(batch_size, pad=pad):
        logits = np.asarray(run_batch(batch))
        logits = logits.reshape(logits.shape[0], -1)[:valid]
        num_outputs = logits.shape[1]
        rows.append(topk_of(logits))
        done += valid
        if progress:
            progress("eval", done / len(images), f"{done}/{len(images)} images")
    return Predictions(np.concatenate(rows).astype(np.int64), num_outputs, time.perf_counter() - t0)


def evaluate(
    session, images: PreparedImages, *, batch_size: int, input_name: str = "input", progress: Progress | None = None
) -> Predictions:
    """The timed session over the images, after its measurement: each batch bound, run, read back."""

    def run_batch(batch: np.ndarray) -> np.ndarray:
        session.bind({input_name: batch})
        session.run()
        return session.outputs()[0]

    return predict(run_batch, images, batch_size, progress=progress)


def evaluate_torch(
    module, images: PreparedImages, *, batch_size: int = 32, progress: Progress | None = None
) -> Predictions:
    """The fp32 PyTorch reference (any batch size: no padding needed)."""
    import torch

    module = module.eval()

    def run_batch(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = module(torch.from_numpy(batch))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().numpy()

    return predict(run_batch, images, batch_size, pad=False, progress=progress)


def evaluate_onnx(
    onnx_path: str | Path,
    images: PreparedImages,
    *,
    batch_size: int,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Predictions:
    """The fp32 ONNX Runtime reference for ONNX-file models (no PyTorch module to run)."""
    from effbench.core.runtimes import open_session
    from effbench.core.settings import MeasureSettings

    c, h, w = images.pixels.shape[3], *images.preprocess.size
    settings = MeasureSettings(runtime="onnxruntime", input_shape=[batch_size, c, h, w], threads=threads)
    session = open_session("onnxruntime", str(onnx_path), settings)
    try:
        return evaluate(session, images, batch_size=batch_size, progress=progress)
    finally:
        session.close()


def onnx_num_outputs(onnx_path: str | Path) -> int | None:
    """The class count of an ONNX classifier (the first output's last static dimension), or None."""
    import onnx

    out = onnx.load(str(onnx_path), load_external_data=False).graph.output[0]
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    return dims[-1] if dims and dims[-1] > 0 else None


def check_classes(images: PreparedImages, num_outputs: int | None, option: str = "--eval") -> None:
    """Labels the model cannot produce: one line, before any measuring (find_images checks the same
    when it is given num_classes; this covers a model whose output count is known only after export)."""
    if num_outputs is None or images.labels is None or len(images.labels) == 0:
        return
    top = int(images.labels.max())
    if top >= num_outputs:
        fix = (
            "pass --eval-labels FILE mapping folder names to the model's class indices"
            if images.labels_source == "imagefolder"
            else "fix the labels file's indices"
        )
        raise UsageError(f"{option} {images.root} has class index {top} but the model has {num_outputs} outputs: {fix}")


def cached_reference(parts: dict[str, Any], compute: Callable[[], Predictions]) -> tuple[Predictions, bool]:
    """The reference predictions for `parts` (model weights, dataset hash, preprocessing, runtime) from
    the artifact cache, computed once: fp32 and int8 cells of one sweep share them. (predictions, cached)."""
    from effbench.export.cache import get_or_build

    def build(target: Path) -> None:
        target.write_text(json.dumps(compute().to_dict()))

    art = get_or_build("reference-eval", parts, "predictions.json", build)
    return Predictions.from_dict(json.loads(art.file.read_text())), art.cached


def _rate(correct: np.ndarray) -> tuple[float, list[float]]:
    k, n = int(np.sum(correct)), int(correct.size)
    lo, hi = metrics.wilson(k, n)
    return metrics.pct(k / n if n else 0.0), [metrics.pct(lo), metrics.pct(hi)]


def accuracy_record(
    test: Predictions,
    images: PreparedImages,
    *,
    reference: Predictions | None = None,
    reference_info: dict[str, Any] | None = None,
    limit: int | None = None,
    calibration_root: str | None = None,
    warnings: Iterable[str] = (),
) -> dict[str, Any]:
    """The result's `accuracy` block (percentages 0-100).

    reference_info: {"runtime": "torch" | "onnxruntime", "precision": "fp32"} of `reference`.
    calibration_root: the --calib folder of an int8 artifact (a warning when it is the eval folder)."""
    if images.labels is None:
        raise UsageError("the evaluation images have no labels")
    if len(test.topk) != len(images):
        raise ValueError(f"{len(test.topk)} predictions for {len(images)} images")
    labels = images.labels
    top1_ok, top5_ok = test.correct(labels, 1), test.correct(labels, TOP_K)
    top1, top1_ci = _rate(top1_ok)
    top5, top5_ci = _rate(top5_ok)
    out: dict[str, Any] = {
        "top1": top1,
        "top1_ci": top1_ci,
        "top5": top5,
        "top5_ci": top5_ci,
        "top_k": int(test.topk.shape[1]),
        **images.describe(),
        "limit": limit,
        "seconds": round(test.seconds, 3),
        "num_outputs": test.num_outputs,
        "correct": metrics.pack_correct(top1_ok),
    }
    notes = list(warnings)
    if test.topk.shape[1] < TOP_K:
        notes.append(f"the model has {test.num_outputs} outputs: top-5 is top-{test.topk.shape[1]}")
    if calibration_root and images.root and Path(calibration_root).resolve() == Path(images.root).resolve():
        notes.append(
            "calibrated and evaluated on the same folder: the int8 accuracy is optimistic; calibrate on other images"
        )
    if reference is not None:
        if len(reference.topk) != len(images):
            raise ValueError(f"reference has {len(reference.topk)} predictions for {len(images)} images")
        ref_ok = reference.correct(labels, 1)
        ref_top1, ref_ci = _rate(ref_ok)
        table = metrics.PairedTable.from_correct(ref_ok, top1_ok)
        lo, hi = metrics.paired_difference_ci(table)
        out["reference"] = {
            **(reference_info or {}),
            "top1": ref_top1,
            "top1_ci": ref_ci,
            "top5": _rate(reference.correct(labels, TOP_K))[0],
            "seconds": round(reference.seconds, 3),
        }
        out.update(
            {
                "drop": metrics.pct(table.drop),
                "drop_ci": [metrics.pct(lo), metrics.pct(hi)],
                "mcnemar_p": metrics.mcnemar_p(table.ref_only, table.test_only),
                "discordant": {"reference_only": table.ref_only, "test_only": table.test_only},
                "agreement": metrics.pct(float(np.mean(reference.top1 == test.top1))),
            }
        )
    out["warnings"] = notes
    return out


def reference_parts(model_key: str, images: PreparedImages, runtime: str) -> dict[str, Any]:
    """Cache-key parts of a reference evaluation: the fp32 model (its weights hash or ONNX artifact
    key), the images (content hash and preprocessing) and the reference runtime."""
    blob = json.dumps(images.preprocess.to_dict(), sort_keys=True).encode()
    return {
        "model": model_key,
        "dataset_hash": images.dataset_hash,
        "runtime": runtime,
        "preprocess": hashlib.sha256(blob).hexdigest()[:16],
        "n": len(images),
    }
