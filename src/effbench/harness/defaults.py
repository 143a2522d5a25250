"""The defaults of a cell, stated once: the measurement ones come from effbench.core.settings, the
rest are the harness's. RunConfig's fields read them here, and `bench run`'s options are generated
from those fields (a test checks that the command line's defaults are RunConfig's)."""

from __future__ import annotations

from typing import Any

from effbench.core.settings import DEFAULTS as MEASUREMENT

RUN_DEFAULTS: dict[str, Any] = {
    **MEASUREMENT,
    "device": "cpu",
    "batch_size": 1,
    "compile": False,
    "pretrained": False,
    "weights": None,
    "input_size": None,
    "parity": True,
    "seed": 0,
    "channels_last": False,
    "cuda_graph": False,
    "energy_window_s": 10.0,
    "calib": None,
    "calib_size": 300,
    "eval": None,
    "eval_labels": None,
    "eval_limit": None,
    "skip_bad_images": False,
    "max_drop": None,
    "max_fallback": None,
    "crop_pct": None,
    "interpolation": None,
    "mean": None,
    "std": None,
    "timeout_s": 900.0,
    "tag": None,
}
