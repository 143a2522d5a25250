"""Core ML (ML Program .mlpackage) through coremltools' MLModel, macOS only.

Compute units come from `--opt compute_units=all|cpu_only|cpu_and_gpu|cpu_and_ne` (default all)
and are recorded in the result. fp32 and fp16 are compute precisions fixed at conversion time, so
each is its own cached artifact. The timed call is `MLModel.predict`, which also builds the output
dict: coremltools offers no lower-level call, and the result says so.

Export works on any OS (effbench.export.coreml_export); loading and running need macOS.
"""

from __future__ import annotations

import platform

import numpy as np

from effbench.backends.base import Backend, Session, package_version
from effbench.errors import RunFailed, UsageError

# importing registers the "coreml" artifact builder with export.pipeline
from effbench.export import coreml_export  # noqa: F401

COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")
_UNIT_ALIASES = {"cpu": "cpu_only", "gpu": "cpu_and_gpu", "ne": "cpu_and_ne", "ane": "cpu_and_ne"}
MACOS_ONLY = "needs macOS (Core ML runs only on Apple platforms)"


def _on_macos() -> bool:
    return platform.system() == "Darwin"


def parse_compute_units(value: str | None) -> str:
    """'all' | 'cpu_only' | 'cpu_and_gpu' | 'cpu_and_ne' (ct.ComputeUnit names, lower case)."""
    if value is None or value == "":
        return "all"
    v = str(value).strip().lower().replace("-", "_")
    v = _UNIT_ALIASES.get(v, v)
    if v not in COMPUTE_UNITS:
        raise UsageError(f"--opt compute_units must be one of {', '.join(COMPUTE_UNITS)} (got {value!r})")
    return v


class CoreMLSession(Session):
    def __init__(self, model, input_name: str, output_names: list[str]):
        super().__init__()
        self.model, self.input_name, self.output_names = model, input_name, output_names
        self._inputs: dict[str, np.ndarray] = {}
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


class CoreMLBackend(Backend):
    name = "coreml"
    aliases = ("mlpackage",)
    artifact_format = "coreml"
    precisions = ("fp32", "fp16")
    devices = ("cpu",)
    description = "Core ML ML Program via coremltools (macOS); --opt compute_units=all|cpu_only|cpu_and_gpu|cpu_and_ne"

    def version(self):
        return package_version("coremltools")

    def unavailable_reason(self, device: str = "cpu") -> str | None:
        if not _on_macos():
            return MACOS_ONLY
        if self.version() is None:
            return "coremltools not installed: pip install coremltools"
        return super().unavailable_reason(device)

    def load(self, artifact, cfg, input_shape):
        if not _on_macos():
            raise UsageError(f"backend 'coreml' is not usable here: {MACOS_ONLY}")
        units = parse_compute_units(cfg.options.get("compute_units"))
        manifest = coreml_export.read_manifest(artifact.path)
        info: dict = {}
        if manifest.get("precision", "fp32") != cfg.precision:
            # build_artifact made the default (fp32) package; compute precision is fixed at conversion
            art = _artifact_for(cfg, input_shape)
            manifest = coreml_export.read_manifest(art.path)
            info[f"{cfg.precision}_export_s"] = round(art.export_s, 3)
            info[f"{cfg.precision}_artifact_cached"] = art.cached
        import coremltools as ct

        try:
            model = ct.models.MLModel(manifest["package_path"], compute_units=getattr(ct.ComputeUnit, units.upper()))
        except Exception as e:
            raise RunFailed(f"Core ML could not load the model: {coreml_export._first_line(e)}") from None
        session = CoreMLSession(model, manifest.get("input", coreml_export.INPUT_NAME),
                                list(manifest.get("outputs") or []))
        session.precision_ran = manifest.get("precision", cfg.precision)
        session.runtime_info = {
            "compute_units": units.upper(),
            "compute_precision": manifest.get("compute_precision"),
            "export_path": manifest.get("export_path"),
            "coremltools": ct.__version__,
            "timed_call": "MLModel.predict (includes building the output dict)",
            **({"export_workarounds": manifest["workarounds"]} if manifest.get("workarounds") else {}),
            **info,
        }
        return session


def _artifact_for(cfg, input_shape):
    from effbench.export.pipeline import ModelSource
    from effbench.models.registry import resolve

    src = ModelSource(resolve(cfg.model, cfg.input_size), cfg.pretrained, cfg.seed)
    return coreml_export.coreml_artifact(src, tuple(input_shape), precision=cfg.precision)
