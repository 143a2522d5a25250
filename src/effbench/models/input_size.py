"""Whether a model can take an input size other than its own, found before any export.

An ONNX file with a fixed height and width takes only those. A timm model whose configuration
says `fixed_input_size` (position embeddings or attention biases sized for one resolution) is
tried once at the asked size on PyTorch's meta device (shapes only: no weights, no memory, about a
second), and the verdict is remembered per timm version in the cache, so a size seen before costs
no torch import."""

from __future__ import annotations

from pathlib import Path

from effbench.errors import UsageError
from effbench.models.memo import remembered
from effbench.paths import cache_root


def check_onnx_size(path: str, fixed_hw: tuple[int, int] | None, input_size: int) -> None:
    if fixed_hw and tuple(fixed_hw) != (input_size, input_size):
        h, w = fixed_hw
        raise UsageError(
            f"{path} fixes its input at {h}x{w}: --input-size {input_size} needs a file exported with a dynamic "
            f"height and width (or use --input-size {h})"
        )


def _verdicts_path(version: str) -> Path:
    return cache_root() / "timm-names" / f"input-sizes-{version}.json"


def _try_on_meta(name: str, size: int, channels: int) -> str | None:
    """None if timm's `name` runs at size x size; else the first line of its shape error."""
    import timm
    import torch

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None or not cfg.fixed_input_size:
        return None
    try:
        with torch.device("meta"):
            timm.create_model(name).eval()(torch.empty(1, channels, size, size))
    except Exception as e:  # a shape mismatch inside the model
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return None


def check_timm_size(model: str, timm_name: str, native: tuple[int, int, int], input_size: int, version: str) -> None:
    if (native[1], native[2]) == (input_size, input_size):
        return
    why = remembered(
        _verdicts_path(version), f"{timm_name}@{input_size}", lambda: _try_on_meta(timm_name, input_size, native[0])
    )
    if why:
        raise UsageError(
            f"{model} takes only {native[1]}x{native[2]} inputs (its timm definition is sized for that resolution: "
            f"{why}): drop --input-size {input_size} for this model"
        )
