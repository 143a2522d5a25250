"""The defaults of a cell, stated once: the measurement ones come from effbench.core.settings, the
rest are the harness's. RunConfig and the command line both read them here (a test checks that
neither drifts); importing this costs nothing, so `bench --help` stays fast."""

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


def default_of(name: str) -> Any:
    return RUN_DEFAULTS[name]
