"""Core ML (ML Program .mlpackage) through coremltools' MLModel, macOS only.

The timed call is `MLModel.predict`, which also builds the output dict: coremltools offers no
lower-level call, and the session says so in its runtime_info.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any, Dict, Optional

import numpy as np

from ..session import CoreError, Session, first_line
from ..settings import MeasureSettings
from .coreml_plan import compute_plan

COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")
MACOS_ONLY = "needs macOS (Core ML runs only on Apple platforms)"


def on_macos() -> bool:
    return platform.system() == "Darwin"


def version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("coremltools")
    except PackageNotFoundError:
        return None


def probe() -> Dict[str, Any]:
    if not on_macos():  # importing coremltools costs seconds (it imports torch)
        return {"version": version(), "usable": False, "why": "Core ML runs only on macOS"}
    try:
        import coremltools as ct
    except ImportError as e:
        return {"missing": True, "pip": "coremltools", "error": first_line(e)}
    return {"version": ct.__version__, "compute_units": [u.name for u in ct.ComputeUnit]}


class CoreMLSession(Session):
    def __init__(self, model, input_name: str, output_names):
        super().__init__()
        self.model, self.input_name, self.output_names = model, input_name, list(output_names or [])
        self._inputs: Dict[str, np.ndarray] = {}
        self._last = None

    def bind(self, inputs):
        arr = np.ascontiguousarray(next(iter(inputs.values())), dtype=np.float32)
        self._inputs = {self.input_name: arr}
        self._predict = self.model.predict

    def run(self):
        self._last = self._predict(self._inputs)

    def outputs(self):
        if self._last is None:
            return []
        names = self.output_names or list(self._last)
        return [np.array(self._last[n], dtype=np.float32, copy=True) for n in names]

    def close(self):
        self.model = None
        self._last = None


def read_manifest(path: str) -> Dict[str, Any]:
    """The manifest next to an exported .mlpackage (model.mlpackage.json), or a bare package."""
    if str(path).endswith(".json"):
        with open(path) as f:
            meta = json.load(f)
        meta.setdefault("package_path", os.path.join(os.path.dirname(str(path)), meta.get("package", "")))
        return meta
    return {"package_path": str(path)}


def open_session(path: str, settings: MeasureSettings) -> CoreMLSession:
    """runtime_options: compute_units (all | cpu_only | cpu_and_gpu | cpu_and_ne)."""
    if not on_macos():
        raise CoreError("unsupported", "Core ML %s; this device runs %s" % (MACOS_ONLY, platform.system()))
    try:
        import coremltools as ct
    except ImportError:
        raise CoreError("missing_runtime", "coremltools not installed", packages=["coremltools"]) from None
    units = str(settings.runtime_options.get("compute_units") or "all").lower()
    if units not in COMPUTE_UNITS:
        raise CoreError("bad_option", "compute_units must be one of %s, not %r" % (", ".join(COMPUTE_UNITS), units))
    meta = read_manifest(path)
    try:
        model = ct.models.MLModel(meta["package_path"], compute_units=getattr(ct.ComputeUnit, units.upper()))
    except Exception as e:
        raise CoreError("load_failed", "Core ML could not load the model: %s" % first_line(e)) from None
    spec = model.get_spec()
    session = CoreMLSession(
        model,
        meta.get("input") or spec.description.input[0].name,
        meta.get("outputs") or [o.name for o in spec.description.output],
    )
    session.precision_ran = meta.get("precision", settings.precision)
    session.runtime_info = {
        "compute_units": units.upper(),
        "compute_precision": meta.get("compute_precision", session.precision_ran),
        "coremltools": ct.__version__,
        "timed_call": "MLModel.predict (includes building the output dict)",
    }
    for key in ("export_path", "workarounds"):
        if meta.get(key):
            session.runtime_info["export_" + key if key == "workarounds" else key] = meta[key]
    session.runtime_info["placement"] = compute_plan(ct, model, units)
    return session
