"""ONNX (or torch) -> OpenVINO IR. Weights stay fp32 in the IR; precision is chosen at compile time."""

from __future__ import annotations

from pathlib import Path

from effbench.errors import RunFailed
from effbench.export.onnx_export import _first_line


def onnx_to_ir(onnx_path: Path, target_xml: Path) -> None:
    import openvino as ov

    try:
        model = ov.convert_model(str(onnx_path))
        ov.save_model(model, str(target_xml), compress_to_fp16=False)
    except Exception as e:
        raise RunFailed(f"OpenVINO conversion failed: {_first_line(e)}") from None


def torch_to_ir(model, input_shape: tuple[int, ...], target_xml: Path) -> None:
    import openvino as ov
    import torch

    try:
        ov_model = ov.convert_model(model, example_input=torch.randn(*input_shape))
        ov.save_model(ov_model, str(target_xml), compress_to_fp16=False)
    except Exception as e:
        raise RunFailed(f"OpenVINO conversion from torch failed: {_first_line(e)}") from None
