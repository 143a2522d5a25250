"""The predictor's ONNX graphs as the file a backend opens when it reads no ONNX.

LiteRT opens only .tflite, so each single-kernel graph (and each whole zoo model) goes ONNX -> torch
(onnx2torch) -> .tflite (litert-torch), in one spawned process per batch (litert-torch imports JAX,
which the measuring worker must not carry). A converted file is kept under the build's directory,
named by the ONNX file's content, so a resumed build converts nothing twice. A graph that does not
convert is a kernel error, recorded like one the runtime cannot run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from effbench.export.isolated import isolated, quiet, refused

CONVERTERS = {"tflite": "onnx2torch -> litert-torch"}


def graph_format(artifact_format: str) -> str:
    """The format a backend measures the predictor's graphs in: its own where it reads no ONNX, else onnx
    (OpenVINO's and ONNX Runtime's core runtimes open the ONNX graphs directly)."""
    return artifact_format if artifact_format in CONVERTERS else "onnx"


def target_path(onnx_path: str, directory: Path, fmt: str) -> Path:
    digest = hashlib.sha1(Path(onnx_path).read_bytes()).hexdigest()[:16]
    return directory / f"{digest}.{fmt}"


def _to_tflite(items: list[tuple[str, list[list[int]], str]]) -> list[str | None]:
    """In the spawned process: each (onnx path, input shapes, target) converted; None or the error."""
    with quiet():
        import litert_torch
        import onnx2torch
        import torch

    out: list[str | None] = []
    rng = np.random.default_rng(0)
    for source, shapes, target in items:
        try:
            with quiet(), torch.no_grad():
                module = onnx2torch.convert(source).eval()
                args = tuple(torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in shapes)
                tmp = f"{target}.{os.getpid()}.tmp"
                litert_torch.convert(module, args).export(tmp)
            os.replace(tmp, target)
            out.append(None)
        except Exception as e:  # a graph the converters refuse is this kernel's error, not the build's
            out.append(f"conversion to .tflite failed: {refused(e)}")
    return out


def convert_jobs(jobs: list[dict[str, Any]], fmt: str, directory: Path) -> list[dict[str, Any]]:
    """The jobs with `artifact` (the converted file) or `error` (why it could not be made)."""
    if fmt not in CONVERTERS:
        raise ValueError(f"no converter from ONNX to {fmt}")
    directory.mkdir(parents=True, exist_ok=True)
    out = [{"artifact": str(target_path(job["path"], directory, fmt)), **job} for job in jobs]
    todo = [job for job in out if "error" not in job and not Path(job["artifact"]).exists()]
    if todo:
        errors = isolated(_to_tflite, [(j["path"], list(j["inputs"].values()), j["artifact"]) for j in todo])
        for job, error in zip(todo, errors):
            if error:
                job["error"] = error
    return out
