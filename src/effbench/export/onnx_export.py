"""torch -> ONNX with fixed shapes, checked with onnx.checker and shape inference."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from effbench.errors import RunFailed

OPSET = 17


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


# --dynamic: batch, height and width left free (the output's batch follows)
DYNAMIC_AXES = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}


def export_torch_to_onnx(
    model, input_shape: tuple[int, ...], target: Path, exporter: str = "torchscript", dynamic: bool = False
) -> None:
    """Export `model` for one fixed input shape (N, C, H, W), or with dynamic batch, height and width
    traced at that shape, and write a shape-inferred, checked graph."""
    import torch

    x = torch.randn(*input_shape)
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (x,),
                str(target),
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                dynamic_axes=DYNAMIC_AXES if dynamic else None,
                dynamo=(exporter == "dynamo"),
            )
    except Exception as e:
        raise RunFailed(f"ONNX export failed ({exporter} exporter): {_first_line(e)}") from None
    finalize_onnx(target)


def finalize_onnx(path: Path, batch: int | None = None, what: str = "exported ONNX graph") -> None:
    """Fix a dynamic batch dimension, run shape inference and the checker, save in place."""
    import onnx

    model = onnx.load(str(path))
    if batch is not None:
        for inp in model.graph.input:
            dims = inp.type.tensor_type.shape.dim
            if dims and dims[0].dim_value <= 0:
                dims[0].Clear()
                dims[0].dim_value = batch
        for out in model.graph.output:
            dims = out.type.tensor_type.shape.dim
            if dims and dims[0].dim_value <= 0:
                dims[0].Clear()
                dims[0].dim_value = batch
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, data_prop=True)
        onnx.checker.check_model(model)
    except Exception as e:
        raise RunFailed(f"{what} failed checking: {_first_line(e)}") from None
    onnx.save(model, str(path))


def static_copy(src: Path, target: Path, batch: int) -> int:
    """A user's ONNX file with the batch fixed, shape-inferred and checked (the user's file is
    untouched). Returns the number of parameters (initializer elements)."""
    import shutil

    import numpy as np
    import onnx

    shutil.copyfile(src, target)
    finalize_onnx(target, batch, what=f"ONNX file {src}")
    model = onnx.load(str(target), load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
