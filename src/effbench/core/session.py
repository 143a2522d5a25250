"""The session contract every runtime implements, and the errors the core raises.

A Session binds inputs once, runs one synchronous inference on the bound inputs, hands back host
copies of the outputs, can optionally report per-layer times, and closes. Only `run()` is timed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


class CoreError(Exception):
    """A failure the core can name. `kind` is one of KINDS; the harness maps it to a status."""

    KINDS = (
        "load_failed",
        "run_failed",
        "bad_option",
        "bad_input",
        "bad_artifact",
        "missing_runtime",
        "broken_runtime",
        "unsupported",
        "timeout",
        "disk_full",
        "io_error",
        "out_of_memory",
        "bad_transfer",
    )

    def __init__(self, kind: str, message: str, **extra: Any):
        super().__init__(message)
        self.kind, self.message, self.extra = kind, message, extra

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.extra, kind=self.kind, message=self.message)


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


@dataclass
class LayerTime:
    """One executed kernel/layer of a profiled run."""

    name: str  # the runtime's own layer name
    op_type: str  # the runtime's kernel or layer type
    time_ms: float  # mean time per inference
    nodes: List[str] = field(default_factory=list)  # ONNX node names it covers, when the runtime says
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class ThroughputRun:
    """What a runtime's own concurrent machinery achieved."""

    images: int
    seconds: float
    request_latencies_ms: List[float]
    requests_in_flight: int
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


class Session:
    precision_ran = "fp32"

    def __init__(self) -> None:
        self.runtime_info: Dict[str, Any] = {}

    def bind(self, inputs: Dict[str, Any]) -> None:
        """Copy inputs to where the runtime reads them (device memory, runtime tensors), once."""
        raise NotImplementedError

    def run(self) -> None:
        """One synchronous inference on the bound inputs (device work finished on return)."""
        raise NotImplementedError

    def outputs(self) -> list:
        """Host copies of the last run's outputs."""
        raise NotImplementedError

    def timed_loop(self, n: int, out, offset: int = 0) -> None:
        """Run n inferences, writing each one's nanoseconds into out[offset:offset+n].

        Sessions whose device runs asynchronously (CUDA) override this with device timers."""
        run = self.run
        clock = time.perf_counter_ns
        for i in range(offset, offset + n):
            t0 = clock()
            run()
            out[i] = clock() - t0

    def run_throughput(self, duration_s: float, min_iters: int, requests: Optional[int]) -> Optional[ThroughputRun]:
        """The runtime's own concurrency for `duration_s`. None: not supported (throughput then
        comes from synchronous batched inference)."""
        return None

    def profile(self, iters: int) -> Optional[List[LayerTime]]:
        """Per-layer times over `iters` runs, or None when the runtime cannot say."""
        return None

    def runtime_graph(self) -> Optional[List[Dict[str, Any]]]:
        """The graph the runtime executes (one dict per layer: name, type, inputs, original names),
        from the model it compiled; None when it has none to show."""
        return None

    def device_memory(self) -> Optional[Dict[str, Any]]:
        """Accelerator memory figures, or None on the CPU."""
        return None

    def late_info(self) -> None:
        """Add to runtime_info what is too costly to learn while loading, once the timed runs are done."""

    def close(self) -> None:
        pass
