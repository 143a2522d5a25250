"""Core ML (ML Program .mlpackage) through coremltools' MLModel, macOS only (the session lives in
effbench.core.runtimes.coreml, so remote Macs run it through the agent too).

Compute units come from `--opt compute_units=all|cpu_only|cpu_and_gpu|cpu_and_ne` (default all) and
are recorded in the result. fp32 and fp16 are compute precisions fixed at conversion time, so each
is its own cached artifact (effbench.export.coreml_export). Export works on any OS.
"""

from __future__ import annotations

import platform
from typing import Literal

from pydantic import Field, field_validator

from effbench.backends.base import Backend, BackendOptions, package_version
from effbench.core.runtimes.coreml import COMPUTE_UNITS, MACOS_ONLY

_UNIT_ALIASES = {"cpu": "cpu_only", "gpu": "cpu_and_gpu", "ne": "cpu_and_ne", "ane": "cpu_and_ne"}

__all__ = ["COMPUTE_UNITS", "CoreMLBackend", "MACOS_ONLY"]


class CoreMLOptions(BackendOptions):
    compute_units: Literal["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"] = Field(
        "all", description="Core ML compute units (aliases: cpu, gpu, ne)"
    )

    @field_validator("compute_units", mode="before")
    @classmethod
    def _alias(cls, v):
        if isinstance(v, str):
            v = v.strip().lower().replace("-", "_")
            return _UNIT_ALIASES.get(v, v)
        return v


def _on_macos() -> bool:
    return platform.system() == "Darwin"


class CoreMLBackend(Backend):
    name = "coreml"
    aliases = ("mlpackage",)
    artifact_format = "coreml"
    exporter = "effbench.export.pipeline:coreml_artifact"
    precisions = ("fp32", "fp16")
    devices = ("cpu",)
    description = "Core ML ML Program via coremltools (macOS); --opt compute_units=all|cpu_only|cpu_and_gpu|cpu_and_ne"
    Options = CoreMLOptions
    core_runtime = "coreml"
    packages = ("coremltools",)

    def version(self):
        return package_version("coremltools")

    def unavailable_reason(self, device: str = "cpu") -> str | None:
        if not _on_macos():
            return MACOS_ONLY
        if self.version() is None:
            return "coremltools not installed: pip install coremltools"
        return super().unavailable_reason(device)
