"""Shared CUDA helpers for the GPU backends: why a CUDA device is not usable, the CUDA-event timing
loop, and matching a CUDA device to its NVML device by UUID (never by index: CUDA_VISIBLE_DEVICES
and CUDA_DEVICE_ORDER renumber CUDA devices, NVML does not).

Nothing here imports torch at module level: `bench backends` on a machine without a GPU must stay
cheap, and the pure helpers (device parsing, UUID normalisation, chunk statistics) are tested on
the CPU.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from effbench.errors import UsageError

NO_DEVICE = "no CUDA device (needs an NVIDIA GPU and its driver: nvidia-smi must list one)"
_DEVICE_RE = re.compile(r"cuda(?::(\d+))?")


def is_cuda(device: str) -> bool:
    return device.split(":")[0] == "cuda"


def cuda_index(device: str) -> int:
    """'cuda' -> 0, 'cuda:1' -> 1; anything else is a usage error."""
    m = _DEVICE_RE.fullmatch(device.strip())
    if not m:
        raise UsageError(f"invalid CUDA device {device!r}; use cuda or cuda:N (N = index among visible GPUs)")
    return int(m.group(1) or 0)


def cuda_unavailable_reason(device: str = "cuda:0") -> str | None:
    """None when torch can run on `device`; otherwise the reason in words a user can act on.

    torch provides the device buffers, streams and events every GPU backend here uses, so its CUDA
    build is a requirement for all of them.
    """
    m = _DEVICE_RE.fullmatch(device.strip())
    if not m:
        return f"invalid CUDA device {device!r} (use cuda or cuda:N)"
    index = int(m.group(1) or 0)
    try:
        import torch
    except ImportError:
        return "torch not installed (the GPU backends use it for device buffers and CUDA events)"
    if not getattr(torch.version, "cuda", None):
        return "torch built without CUDA (install a CUDA build of torch)"
    try:
        count = torch.cuda.device_count()
    except Exception as e:  # a broken driver install raises here
        return f"no CUDA device ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    if count == 0:
        return NO_DEVICE
    if index >= count:
        return f"no CUDA device {index} (this machine has {count} visible: cuda:0..cuda:{count - 1})"
    return None


# --- UUID matching ------------------------------------------------------------------------------


def normalize_uuid(uuid: Any) -> str:
    """A GPU UUID as 32 lower-case hex digits, whatever its spelling.

    NVML spells 'GPU-6ad8b1f8-0c8e-...' (str, or bytes in old bindings); torch gives a _CUuuid
    whose `.bytes` are the 16 raw bytes; CUDA_VISIBLE_DEVICES may carry either text form.
    """
    if uuid is None:
        return ""
    raw = getattr(uuid, "bytes", None)
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 16:
        return bytes(raw).hex()
    if isinstance(uuid, (bytes, bytearray)):
        uuid = uuid.decode(errors="replace")
    text = str(uuid).strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.replace("-", "")
    return text if re.fullmatch(r"[0-9a-f]{32}", text) else ""


def match_uuid(target: Any, candidates: list[Any]) -> int | None:
    """Index in `candidates` of the UUID equal to `target` (any spelling), or None."""
    want = normalize_uuid(target)
    if not want:
        return None
    for i, c in enumerate(candidates):
        if normalize_uuid(c) == want:
            return i
    return None


def torch_device_uuid(index: int) -> str | None:
    """The CUDA device's UUID as 32 hex digits (from torch), or None when torch cannot say."""
    try:
        import torch

        props = torch.cuda.get_device_properties(index)
    except Exception:
        return None
    return normalize_uuid(getattr(props, "uuid", None)) or None


def gpu_identity(index: int) -> dict[str, Any]:
    """Name, compute capability, memory and UUID of CUDA device `index` (torch's view)."""
    import torch

    p = torch.cuda.get_device_properties(index)
    return {
        "name": p.name,
        "compute_capability": f"{p.major}.{p.minor}",
        "total_memory_mb": round(p.total_memory / 2**20),
        "multiprocessors": getattr(p, "multi_processor_count", None),
        "uuid": normalize_uuid(getattr(p, "uuid", None)) or None,
        "cuda_index": index,
        "torch_cuda": torch.version.cuda,
    }


def tf32_capable(index: int) -> bool:
    """TF32 tensor cores exist from Ampere (compute capability 8.0) on."""
    import torch

    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8


# --- CUDA-event timing --------------------------------------------------------------------------


@dataclass
class ChunkStats:
    """Host wall time versus summed device time of the timed_loop chunks (warm-up and measurement).

    host >> device means the GPU waited for the host (launch-bound); the per-chunk list keeps the
    most recent chunks only, so a long run does not bloat the record.
    """

    keep: int = 64
    chunks: int = 0
    iterations: int = 0
    host_s: float = 0.0
    device_s: float = 0.0
    recent: list[list[float]] = field(default_factory=list)  # [iterations, host ms, device ms]

    def add(self, iterations: int, host_ns: int, device_ns: int) -> None:
        self.chunks += 1
        self.iterations += iterations
        self.host_s += host_ns / 1e9
        self.device_s += device_ns / 1e9
        self.recent.append([iterations, round(host_ns / 1e6, 4), round(device_ns / 1e6, 4)])
        if len(self.recent) > self.keep:
            del self.recent[: len(self.recent) - self.keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": "timed_loop chunks (warm-up + measurement): host wall time vs summed CUDA-event time",
            "chunks": self.chunks,
            "iterations": self.iterations,
            "host_s": round(self.host_s, 6),
            "device_s": round(self.device_s, 6),
            "device_over_host": round(self.device_s / self.host_s, 4) if self.host_s > 0 else None,
            "recent_chunks": list(self.recent),
        }


def _timing_event() -> Any:
    import torch

    return torch.cuda.Event(enable_timing=True)


class EventPool:
    """Pre-created (start, end) CUDA event pairs, grown between chunks, never inside a timed region.

    torch creates a CUDA event lazily, on its first record(): each new event is recorded once on
    the stream here, and the stream synchronised, so no event is created inside the timed loop."""

    def __init__(self, make_event: Callable[[], Any] = _timing_event) -> None:
        self.make_event = make_event
        self.starts: list[Any] = []
        self.ends: list[Any] = []

    def ensure(self, n: int, stream: Any = None) -> None:
        fresh: list[Any] = []
        while len(self.starts) < n:
            pair = (self.make_event(), self.make_event())
            self.starts.append(pair[0])
            self.ends.append(pair[1])
            fresh.extend(pair)
        for event in fresh:
            event.record(stream)
        if fresh:
            fresh[-1].synchronize()


def cuda_timed_loop(
    launch: Callable[[], Any],
    stream,
    n: int,
    out: np.ndarray,
    offset: int,
    pool: EventPool,
    stats: ChunkStats | None = None,
) -> None:
    """Enqueue `launch` n times on `stream` with a CUDA event pair around each, synchronise once at
    the end of the chunk, and write each inference's device time (ns) into out[offset:offset+n].

    `launch` must only enqueue work on `stream` (no synchronisation): the host runs ahead and the
    events time what the device did for each inference, including any gap where it waited for the
    host to launch kernels.
    """
    pool.ensure(n, stream)  # outside the timed region: events exist before the first timestamp
    starts, ends = pool.starts, pool.ends
    clock = time.perf_counter_ns
    t0 = clock()
    for i in range(n):
        starts[i].record(stream)
        launch()
        ends[i].record(stream)
    ends[n - 1].synchronize()
    host_ns = clock() - t0
    total = 0
    for i in range(n):
        ns = int(round(starts[i].elapsed_time(ends[i]) * 1e6))
        out[offset + i] = ns
        total += ns
    if stats is not None:
        stats.add(n, host_ns, total)


class CudaTimedRuns:
    """run() and timed_loop() of a session that enqueues one inference with `_launch()` on
    `self.stream` (and keeps an EventPool in `_pool`, ChunkStats in `_stats`)."""

    stream: Any
    _pool: Any
    _stats: Any
    runtime_info: dict[str, Any]

    def _launch(self) -> None:
        raise NotImplementedError

    def run(self):
        self._launch()
        self.stream.synchronize()

    def timed_loop(self, n, out, offset=0):
        cuda_timed_loop(self._launch, self.stream, n, out, offset, self._pool, self._stats)
        self.runtime_info["host_vs_device"] = self._stats.to_dict()


def nvml_memory(index: int) -> dict[str, Any] | None:
    """NVML's used/total memory of the NVML device matching CUDA device `index` by UUID."""
    try:
        from effbench.backends.nvml import memory_for_cuda_device
    except ImportError:
        return None
    return memory_for_cuda_device(index)


def torch_allocator_memory(index: int, baseline_allocated: int | None = None) -> dict[str, Any]:
    """torch caching-allocator figures of device `index` since its peak was last reset."""
    import torch

    mb = 2**20
    out = {
        "peak_allocated_mb": round(torch.cuda.max_memory_allocated(index) / mb, 2),
        "peak_reserved_mb": round(torch.cuda.max_memory_reserved(index) / mb, 2),
        "allocated_mb": round(torch.cuda.memory_allocated(index) / mb, 2),
        "reserved_mb": round(torch.cuda.memory_reserved(index) / mb, 2),
    }
    if baseline_allocated is not None:
        out["after_load_allocated_mb"] = round(baseline_allocated / mb, 2)
    return out
