"""The backend contract.

A backend says its name and aliases, the artifact format it consumes, whether it is usable here
(and if not, exactly why), and how to load an artifact into a Session. A Session binds inputs once,
runs one synchronous inference on the bound inputs, hands back host copies of the outputs, can
optionally report per-layer times, and closes. Only `run()` is timed.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from effbench.export.cache import Artifact
    from effbench.harness.config import RunConfig


@dataclass
class LayerTime:
    """One executed kernel/layer of a profiled run."""

    name: str  # the runtime's own layer name
    op_type: str  # the runtime's kernel or layer type
    time_ms: float  # mean time per inference
    nodes: list[str] = field(default_factory=list)  # ONNX node names it covers, when the runtime says
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ThroughputRun:
    """What a runtime's own concurrent machinery achieved."""

    images: int
    seconds: float
    request_latencies_ms: list[float]
    requests_in_flight: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


class Session(ABC):
    precision_ran: str = "fp32"

    def __init__(self) -> None:
        self.runtime_info: dict[str, Any] = {}

    @abstractmethod
    def bind(self, inputs: dict[str, np.ndarray]) -> None:
        """Copy inputs to where the runtime reads them (device memory, runtime tensors), once."""

    @abstractmethod
    def run(self) -> None:
        """One synchronous inference on the bound inputs (device work finished on return)."""

    @abstractmethod
    def outputs(self) -> list[np.ndarray]:
        """Host copies of the last run's outputs."""

    def timed_loop(self, n: int, out: np.ndarray, offset: int = 0) -> None:
        """Run n inferences, writing each one's nanoseconds into out[offset:offset+n].

        Sessions whose device runs asynchronously (CUDA) override this with device timers.
        """
        run = self.run
        clock = time.perf_counter_ns
        for i in range(offset, offset + n):
            t0 = clock()
            run()
            out[i] = clock() - t0

    def run_throughput(self, duration_s: float, min_iters: int, requests: int | None) -> ThroughputRun | None:
        """Run the runtime's own concurrency for `duration_s`. None: not supported (the harness
        then measures throughput with synchronous batched inference)."""
        return None

    def profile(self, iters: int) -> list[LayerTime] | None:
        """Per-layer times over `iters` runs, or None when the runtime cannot say."""
        return None

    def device_memory(self) -> dict[str, Any] | None:
        """Accelerator memory figures (peak allocated, reserved, NVML used), or None on the CPU."""
        return None

    def close(self) -> None:
        pass


class Backend(ABC):
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    artifact_format: ClassVar[str]  # "torch" | "onnx" | "openvino" | "none" | ...
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # device kinds it can run on
    description: ClassVar[str] = ""

    @abstractmethod
    def version(self) -> str | None:
        """The runtime's version, or None when it is not installed."""

    def unavailable_reason(self, device: str = "cpu") -> str | None:
        """None when usable on `device`; otherwise why not, in words a user can act on."""
        if self.version() is None:
            return f"{self.name} runtime not installed"
        kind = device.split(":")[0]
        if kind not in self.devices:
            return f"{self.name} does not run on {device!r} (runs on: {', '.join(self.devices)})"
        return None

    def check_precision(self, precision: str, device: str = "cpu") -> str | None:
        if precision not in self.precisions:
            return f"{self.name} on {device} runs {', '.join(self.precisions)}, not {precision}"
        return None

    @abstractmethod
    def load(self, artifact: "Artifact", cfg: "RunConfig", input_shape: tuple[int, ...]) -> Session:
        """Load the artifact for inputs of `input_shape` (N, C, H, W) with cfg's threads and precision."""


def package_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
