"""The runtimes the core can open by itself (and so the remote agent can run): each module has
`open_session(path, settings)`, `version()` and `probe()`, and imports its runtime only when called."""

from __future__ import annotations

import importlib
from typing import Any, Dict

from ..session import CoreError, Session
from ..settings import MeasureSettings

# core runtime name -> (module in this package, the pip distribution that provides it)
RUNTIMES = {
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "openvino": ("openvino", "openvino"),
    "coreml": ("coreml", "coremltools"),
    "litert": ("litert", "ai-edge-litert"),
    "executorch": ("executorch", "executorch"),
}


def runtime_module(name: str):
    if name not in RUNTIMES:
        raise CoreError("bad_option", "no core runtime %r (the core runs %s)" % (name, ", ".join(sorted(RUNTIMES))))
    return importlib.import_module("." + RUNTIMES[name][0], __name__)


def open_session(name: str, path: str, settings: MeasureSettings) -> Session:
    return runtime_module(name).open_session(path, settings)


def probe_all() -> Dict[str, Any]:
    return {name: runtime_module(name).probe() for name in RUNTIMES}
