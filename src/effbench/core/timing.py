"""Timing loops: first inference, warm-up, then measure until duration and count are both met
(and, with a target, until the median's CI is narrow enough, bounded by max_duration). The
scenarios (effbench.core.scenarios) are built from these loops.

Samples go into a preallocated int64 buffer in nanoseconds; the buffer only grows between chunks,
outside any timed region.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .session import Session, ThroughputRun
from .stats import rel_half_width

Progress = Callable[[str, float, str], None]  # (phase, fraction done 0..1, detail)

_CHUNK_S = 0.1  # how often the loop looks at the clock, the CI and the progress display


@dataclass
class ScenarioRun:
    samples_ns: np.ndarray
    first_ns: int
    warmup_iters: int
    warmup_s: float
    measure_s: float
    target_ci: Optional[float] = None
    reached_ci: Optional[float] = None  # relative half-width of the median's 95% CI at the end
    target_met: Optional[bool] = None
    throughput: Optional[ThroughputRun] = None
    notes: List[str] = field(default_factory=list)
    summary: Dict[str, Any] = field(default_factory=dict)  # the scenario's own summary


def first_inference(session: Session) -> int:
    t0 = time.perf_counter_ns()
    session.run()
    return time.perf_counter_ns() - t0


def warmup(session: Session, seconds: float, iters: int, progress: Optional[Progress] = None) -> Tuple[int, float]:
    """Warm up until both `seconds` and `iters` are reached. Returns (iterations, seconds)."""
    buf = np.zeros(max(iters, 1), dtype=np.int64)
    done = 0
    t_start = time.perf_counter()
    chunk = 1
    while done < iters or time.perf_counter() - t_start < seconds:
        if done + chunk > buf.size:
            buf = np.zeros(done + chunk, dtype=np.int64)  # contents are not kept
        t0 = time.perf_counter()
        session.timed_loop(chunk, buf, 0)
        per_iter = (time.perf_counter() - t0) / chunk
        done += chunk
        chunk = max(1, min(10_000, int(_CHUNK_S / max(per_iter, 1e-7))))
        if progress:
            elapsed = time.perf_counter() - t_start
            progress("warmup", min(1.0, max(elapsed / seconds if seconds else 1, done / max(iters, 1))), "%d it" % done)
    return done, time.perf_counter() - t_start


def measure(
    session: Session,
    duration_s: float,
    min_iters: int,
    target_ci: Optional[float] = None,
    max_duration_s: float = 60.0,
    progress: Optional[Progress] = None,
    max_iters: int = 200_000,
) -> Tuple[np.ndarray, float, Optional[float], Optional[bool]]:
    """Time single synchronous inferences. Returns (samples_ns, seconds, reached_ci, target_met).

    `max_iters` (>= min_iters) ends the run even before `duration_s`: it bounds the stored samples."""
    max_iters = max(max_iters, min_iters)
    buf = np.empty(max(min_iters, 1024), dtype=np.int64)
    n = 0
    chunk = max(1, min(min_iters, 10, max_iters))
    t_start = time.perf_counter()
    reached: Optional[float] = None
    met: Optional[bool] = None
    while True:
        if n + chunk > buf.size:
            buf = np.concatenate([buf[:n], np.empty(max(buf.size, chunk), dtype=np.int64)])
        t0 = time.perf_counter()
        session.timed_loop(chunk, buf, n)
        per_iter = (time.perf_counter() - t0) / chunk
        n += chunk
        elapsed = time.perf_counter() - t_start
        if n >= max_iters:
            break
        chunk = max(1, min(100_000, max_iters - n, int(_CHUNK_S / max(per_iter, 1e-8))))
        base_done = elapsed >= duration_s and n >= min_iters
        if progress:
            progress("measure", min(1.0, min(elapsed / duration_s, n / min_iters)), "%d it" % n)
        if not base_done:
            continue
        if target_ci is None:
            break
        reached = rel_half_width(buf[:n])
        if reached <= target_ci:
            met = True
            break
        if elapsed >= max_duration_s:
            met = False
            break
    samples = buf[:n].copy()
    if target_ci is not None and reached is None:
        reached = rel_half_width(samples)
        met = reached <= target_ci
    return samples, time.perf_counter() - t_start, reached, met
