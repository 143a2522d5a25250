"""The two-half transform (uint8 geometry with Pillow, numpy normalisation) equals timm's eval transform."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from effbench.accuracy.preprocess import Preprocess, parse_floats, resolve_preprocess
from effbench.errors import UsageError

CASES = [  # (image h, w), target (h, w), crop_pct, crop mode, interpolation
    ((40, 50), (32, 32), 0.875, "center", "bilinear"),
    ((64, 37), (24, 24), 0.9, "center", "bicubic"),
    ((33, 33), (32, 32), 1.0, "center", "bilinear"),
    ((8, 8), (16, 16), 1.0, "center", "bilinear"),  # upscaling, as the digits tests do
    ((45, 61), (20, 28), 0.95, "center", "bicubic"),  # non-square target: timm's ResizeKeepRatio
    ((45, 61), (24, 24), 0.875, "squash", "bilinear"),
]


@pytest.mark.parametrize("shape,size,crop_pct,mode,interp", CASES)
def test_equals_timm_create_transform(tmp_path, shape, size, crop_pct, mode, interp):
    from timm.data import create_transform

    rng = np.random.default_rng(sum(shape) + size[0])
    path = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    pre = Preprocess(size, 3, crop_pct, mode, interp, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    ours = pre.normalize(pre.load(path)[None])[0]
    timm_t = create_transform(
        input_size=(3, *size), crop_pct=crop_pct, crop_mode=mode, interpolation=interp, mean=pre.mean, std=pre.std
    )
    with Image.open(path) as im:
        theirs = timm_t(im.convert("RGB")).numpy()
    assert ours.shape == theirs.shape == (3, *size)
    assert np.array_equal(ours, theirs)


def test_timm_model_data_config_and_overrides():
    import timm

    model = timm.create_model("mobilenetv3_small_050", pretrained=False)
    pre = resolve_preprocess([1, 3, 160, 160], timm_model=model)
    cfg = timm.data.resolve_data_config({}, model=model)
    assert pre.size == (160, 160)  # the session's input size, not the card's 224
    assert (pre.crop_pct, pre.interpolation, pre.mean) == (cfg["crop_pct"], cfg["interpolation"], tuple(cfg["mean"]))
    assert pre.source.startswith("timm data config")
    over = resolve_preprocess([1, 3, 160, 160], timm_model=model, crop_pct=1.0)
    assert over.crop_pct == 1.0 and over.mean == pre.mean and "options" in over.source


def test_defaults_for_files_and_factories():
    pre = resolve_preprocess([4, 3, 224, 224])
    assert (pre.crop_pct, pre.interpolation, pre.mean, pre.source) == (
        0.875,
        "bilinear",
        (0.485, 0.456, 0.406),
        "defaults",
    )
    grey = resolve_preprocess([1, 1, 28, 28])
    assert grey.mean == (0.5,) and grey.channels == 1


def test_round_trips_through_a_dict():
    pre = resolve_preprocess([1, 3, 32, 32], crop_pct=0.9, mean=[0.1, 0.2, 0.3])
    assert Preprocess.from_dict(pre.to_dict()) == pre


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(crop_pct=1.5), "crop_pct"),
        (dict(interpolation="cubic"), "interpolation"),
        (dict(mean=[0.5, 0.5]), "mean has 2 value(s)"),
        (dict(std=[0.2, 0.0, 0.2]), "must be positive"),
        (dict(crop_mode="border"), "crop mode"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, needle):
    with pytest.raises(UsageError) as e:
        resolve_preprocess([1, 3, 32, 32], **kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_parse_floats():
    assert parse_floats("0.485, 0.456,0.406", "--mean") == (0.485, 0.456, 0.406)
    assert parse_floats([0.5], "--std") == (0.5,)
    with pytest.raises(UsageError, match="--mean"):
        parse_floats("a,b", "--mean")
