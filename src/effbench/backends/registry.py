"""Backend discovery: the `effbench.backends` entry-point group, plus EFFBENCH_BACKENDS.

Built-ins register through the same entry points (pyproject.toml). EFFBENCH_BACKENDS
("name=module:Class,...") adds backends without packaging, e.g. for tests and local experiments.
"""

from __future__ import annotations

import difflib
import importlib
import os
from functools import lru_cache

from effbench.backends.base import Backend
from effbench.errors import UsageError

_BUILTIN = {
    "torch": "effbench.backends.torch_backend:TorchBackend",
    "onnxruntime": "effbench.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "effbench.backends.openvino_backend:OpenVINOBackend",
    "null": "effbench.backends.null_backend:NullBackend",
    "coreml": "effbench.backends.coreml_backend:CoreMLBackend",
    "tensorrt": "effbench.backends.tensorrt_backend:TensorRTBackend",
}


def _load_ref(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=1)
def _refs() -> dict[str, str]:
    from importlib.metadata import entry_points

    refs = dict(_BUILTIN)
    for ep in entry_points(group="effbench.backends"):
        refs[ep.name] = ep.value
    for item in filter(None, os.environ.get("EFFBENCH_BACKENDS", "").split(",")):
        name, _, ref = item.partition("=")
        refs[name.strip()] = ref.strip()
    return refs


@lru_cache(maxsize=None)
def all_backends() -> dict[str, Backend]:
    out: dict[str, Backend] = {}
    for name, ref in _refs().items():
        try:
            cls = _load_ref(ref)
        except Exception as e:  # a broken plugin must not take the others down
            out[name] = _BrokenBackend(name, f"cannot import {ref}: {e}")
            continue
        out[name] = cls()
    return out


def get_backend(name: str) -> Backend:
    backends = all_backends()
    if name in backends:
        return backends[name]
    for b in backends.values():
        if name in b.aliases:
            return b
    names = sorted(set(backends) | {a for b in backends.values() for a in b.aliases})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(backends))}"
    raise UsageError(f"unknown backend {name!r}; {hint} (`bench backends` lists them)")


class _BrokenBackend(Backend):
    artifact_format = "none"

    def __init__(self, name: str, reason: str):
        self.name, self._reason = name, reason  # type: ignore[misc]

    def version(self):
        return None

    def unavailable_reason(self, device="cpu"):
        return self._reason

    def load(self, artifact, cfg, input_shape):
        raise UsageError(self._reason)
