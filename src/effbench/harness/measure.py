"""Timing loops: first inference, warm-up, then measure until duration and count are both met
(and, with a target, until the median's CI is narrow enough, bounded by max_duration).

Samples go into a preallocated int64 buffer in nanoseconds; the buffer only grows between chunks,
outside any timed region.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from effbench.backends.base import Session, ThroughputRun
from effbench.harness.stats import median_ci

Progress = Callable[[str, float, str], None]  # (phase, fraction done 0..1, detail)

_CHUNK_S = 0.1  # how often the loop looks at the clock, the CI and the progress display


@dataclass
class Measurement:
    samples_ns: np.ndarray
    first_ns: int
    warmup_iters: int
    warmup_s: float
    measure_s: float
    target_ci: float | None = None
    reached_ci: float | None = None  # relative half-width of the median's 95% CI at the end
    target_met: bool | None = None
    throughput: ThroughputRun | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def samples_ms(self) -> np.ndarray:
        return self.samples_ns / 1e6


def _rel_half_width(samples_ns: np.ndarray) -> float:
    lo, hi = median_ci(samples_ns)
    med = float(np.median(samples_ns))
    return (hi - lo) / 2 / med if med > 0 else float("inf")


def first_inference(session: Session) -> int:
    t0 = time.perf_counter_ns()
    session.run()
    return time.perf_counter_ns() - t0


def warmup(session: Session, seconds: float, iters: int, progress: Progress | None = None) -> tuple[int, float]:
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
            progress("warmup", min(1.0, max(elapsed / seconds if seconds else 1, done / max(iters, 1))), f"{done} it")
    return done, time.perf_counter() - t_start


def measure(
    session: Session,
    duration_s: float,
    min_iters: int,
    target_ci: float | None = None,
    max_duration_s: float = 60.0,
    progress: Progress | None = None,
    max_iters: int = 200_000,
) -> tuple[np.ndarray, float, float | None, bool | None]:
    """Time single synchronous inferences. Returns (samples_ns, seconds, reached_ci, target_met).

    `max_iters` (>= min_iters) ends the run even before `duration_s`: it bounds the stored samples."""
    max_iters = max(max_iters, min_iters)
    cap = max(min_iters, 1024)
    buf = np.empty(cap, dtype=np.int64)
    n = 0
    chunk = max(1, min(min_iters, 10))
    t_start = time.perf_counter()
    reached: float | None = None
    met: bool | None = None
    while True:
        if n + chunk > buf.size:
            buf = np.concatenate([buf[:n], np.empty(max(buf.size, chunk), dtype=np.int64)])
        t0 = time.perf_counter()
        session.timed_loop(chunk, buf, n)
        per_iter = (time.perf_counter() - t0) / chunk
        n += chunk
        elapsed = time.perf_counter() - t_start
        chunk = max(1, min(100_000, max_iters - n, int(_CHUNK_S / max(per_iter, 1e-8))))
        if n >= max_iters:
            break
        base_done = elapsed >= duration_s and n >= min_iters
        if progress:
            progress("measure", min(1.0, min(elapsed / duration_s, n / min_iters)), f"{n} it")
        if not base_done:
            continue
        if target_ci is None:
            break
        reached = _rel_half_width(buf[:n])
        if reached <= target_ci:
            met = True
            break
        if elapsed >= max_duration_s:
            met = False
            break
    samples = buf[:n].copy()
    if target_ci is not None and reached is None:
        reached = _rel_half_width(samples)
    return samples, time.perf_counter() - t_start, reached, met


def run_scenario(session: Session, cfg, progress: Progress | None = None) -> Measurement:
    first = first_inference(session)
    w_iters, w_s = warmup(session, cfg.warmup_s, cfg.warmup_iters, progress)
    notes: list[str] = []
    tp = None
    if cfg.scenario == "throughput":
        tp = session.run_throughput(cfg.duration_s, cfg.min_iters, cfg.requests)
        if tp is None:
            notes.append("runtime has no concurrent mode here: throughput from synchronous batched runs")
        else:
            samples = np.asarray(tp.request_latencies_ms, dtype=np.float64) * 1e6
            return Measurement(samples.astype(np.int64), first, w_iters, w_s, tp.seconds, throughput=tp, notes=notes)
    samples, secs, reached, met = measure(session, cfg.duration_s, cfg.min_iters, cfg.target_ci,
                                          cfg.max_duration_s, progress, cfg.max_iters)
    if samples.size >= cfg.max_iters and secs < cfg.duration_s:
        notes.append(f"stopped at --max-iters {cfg.max_iters} after {secs:.2f} s")
    return Measurement(samples, first, w_iters, w_s, secs, cfg.target_ci, reached, met, None, notes)
