"""The evaluation transform of a model, in two halves: decode + resize + crop to uint8 pixels (done
once, before any measuring, with Pillow), and normalisation to float32 NCHW (numpy, in whatever
process runs the session: the device agent needs neither torch nor Pillow for it).

The geometry is timm's `transforms_imagenet_eval` (resize the shorter side to floor(size / crop_pct),
then a centre crop; or `squash`: resize both sides, then crop) and the normalisation is
ToTensor + Normalize, so the result equals `timm.data.create_transform(**resolve_data_config(...))`
to the last bit (tests/accuracy/test_preprocess.py holds the two side by side).

For timm models the parameters come from the model's own data configuration
(`timm.data.resolve_data_config`), for a factory from the one it declares (models/data_config.py);
otherwise (ONNX files, factories that declare none) from options, with these defaults:
crop_pct 0.875, bilinear, ImageNet mean and std (0.5 for a one-channel input).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from effbench.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
CROP_MODES = ("center", "squash")
MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class Preprocess:
    size: tuple[int, int]  # H, W of the model input
    channels: int = 3
    crop_pct: float = DEFAULT_CROP_PCT
    crop_mode: str = "center"
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    source: str = "defaults"  # where the parameters came from: "timm data config of NAME", "options", "defaults"

    def __post_init__(self) -> None:
        if self.channels not in MODES:
            raise UsageError(f"the model takes {self.channels}-channel images: effbench feeds 1 (grey) or 3 (RGB)")
        if not 0 < self.crop_pct <= 1:
            raise UsageError(
                f"crop_pct {self.crop_pct:g} must be in (0, 1]: e.g. 0.875 (crop 87.5% of the "
                "resized image) or 1.0 (no crop)"
            )
        if self.crop_mode not in CROP_MODES:
            raise UsageError(f"crop mode {self.crop_mode!r} is not supported: use one of {', '.join(CROP_MODES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise UsageError(f"interpolation {self.interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != self.channels:
                raise UsageError(
                    f"{name} has {len(values)} value(s) but the model takes {self.channels} "
                    f"channel(s): give {self.channels}, e.g. --{name} "
                    + ",".join(str(v) for v in (IMAGENET_MEAN if name == "mean" else IMAGENET_STD)[: self.channels])
                )
        if any(s <= 0 for s in self.std):
            raise UsageError(f"std {','.join(map(str, self.std))} must be positive")

    @property
    def scale_size(self) -> tuple[int, int]:
        return math.floor(self.size[0] / self.crop_pct), math.floor(self.size[1] / self.crop_pct)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"], d["mean"], d["std"] = list(self.size), list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(**{**d, "size": tuple(d["size"]), "mean": tuple(d["mean"]), "std": tuple(d["std"])})

    def load(self, path: str | Path) -> np.ndarray:
        """Decode one image file into H x W x C uint8 pixels, resized and cropped.

        Raises OSError (or PIL's UnidentifiedImageError, a subclass) for a file Pillow cannot decode."""
        from PIL import Image

        with Image.open(path) as im:
            im.load()  # decode fully here: a truncated file fails now, not halfway through an evaluation
            img = im.convert(MODES[self.channels])
        resample = getattr(Image.Resampling, self.interpolation.upper())
        new_h, new_w = self._resized(img.height, img.width)
        if (new_h, new_w) != (img.height, img.width):  # torchvision skips a resize to the same size
            img = img.resize((new_w, new_h), resample)
        th, tw = self.size
        top, left = int(round((img.height - th) / 2.0)), int(round((img.width - tw) / 2.0))
        img = img.crop((left, top, left + tw, top + th))
        arr = np.asarray(img, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr

    def _resized(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) after the resize step, as torchvision's Resize / timm's ResizeKeepRatio compute it."""
        sh, sw = self.scale_size
        if self.crop_mode == "squash":
            return sh, sw
        if sh == sw:  # shorter side to sh, the longer one truncated (torchvision Resize with an int)
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(sh * long / short)
            return (new_long, sh) if w <= h else (sh, new_long)
        ratio = min(h / sh, w / sw)  # timm ResizeKeepRatio, longest=0
        return round(h / ratio), round(w / ratio)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """N x H x W x C uint8 -> N x C x H x W float32, ToTensor then Normalize."""
        x: np.ndarray = np.asarray(pixels).astype(np.float32) / np.float32(255)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def parse_floats(text: str | Sequence[float] | None, option: str) -> tuple[float, ...] | None:
    """'0.485,0.456,0.406' (or a list from a sweep file) -> floats; a bad value is a one-line error."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(float(p) for p in parts if str(p).strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: give comma-separated numbers, e.g. {option} 0.485,0.456,0.406") from None


def resolve_preprocess(
    input_shape: Sequence[int],
    *,
    timm_model: Any = None,
    data_config: dict[str, Any] | None = None,
    crop_pct: float | None = None,
    crop_mode: str | None = None,
    interpolation: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Preprocess:
    """The transform for a model fed `input_shape` ([N,] C, H, W).

    `timm_model`: a timm module (or timm model name) whose data configuration gives crop, interpolation,
    mean and std; `data_config`: a factory's declared one (models.data_config, with its "source"). The
    input size is always the one the session runs at. Explicit options win over both the model's
    configuration and the defaults."""
    c, h, w = (int(v) for v in list(input_shape)[-3:])
    base = Preprocess(
        (h, w), c, mean=IMAGENET_MEAN if c == 3 else (0.5,) * c, std=IMAGENET_STD if c == 3 else (0.5,) * c
    )
    cfg: dict[str, Any] = {}
    if timm_model is not None:
        from timm.data import resolve_data_config

        if isinstance(timm_model, str):
            import timm

            pretrained = timm.get_pretrained_cfg(timm_model)
            cfg = resolve_data_config({}, pretrained_cfg=pretrained.to_dict() if pretrained is not None else None)
            name = timm_model
        else:
            cfg = resolve_data_config({}, model=timm_model)
            name = getattr(timm_model, "default_cfg", {}).get("architecture") or type(timm_model).__name__
        cfg["source"] = f"timm data config of {name}"
    elif data_config:
        cfg = data_config
    if cfg:
        base = replace(
            base,
            crop_pct=float(cfg.get("crop_pct") or DEFAULT_CROP_PCT),
            crop_mode=cfg.get("crop_mode") or "center",
            interpolation=cfg.get("interpolation") or "bilinear",
            mean=tuple(cfg.get("mean") or base.mean),
            std=tuple(cfg.get("std") or base.std),
            source=str(cfg.get("source") or "data config"),
        )
    given: dict[str, Any] = {
        k: v
        for k, v in dict(
            crop_pct=crop_pct,
            crop_mode=crop_mode,
            interpolation=interpolation,
            mean=tuple(mean) if mean is not None else None,
            std=tuple(std) if std is not None else None,
        ).items()
        if v is not None
    }
    if given:
        base = replace(base, **given, source="options" if not cfg else base.source + " + options")
    return base
