"""sustained: continuous inference for the whole duration, cut into windows of `window_s`. Per
window: median, p90, throughput and a telemetry reading; over the run: the last window's median
against the first's (with a 95% CI), when the median left the first window's CI for good, and a
`throttled` verdict with its evidence (windows, clocks, temperatures).

A phone or a fanless board runs its first minute faster than its tenth: this is the number that
says so. Samples are kept per window with decimation (every other one dropped when a window's
buffer fills), so a fast model on a long run keeps bounded memory and an even spread over time."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

import numpy as np

from .. import probes
from ..session import Session
from ..settings import MeasureSettings
from ..stats import median_ci
from .base import Context, Scenario, Timed, register

MIN_WINDOWS = 2
DEFAULT_WINDOW_S = 60.0
KEEP_PER_WINDOW = 1 << 18  # samples kept per window (decimated beyond)
MIN_CHANGE = 0.02  # a window counts as departed only when its median also moved by more than this
THROTTLE = 0.05  # throttled: the last/first ratio's CI lies entirely above 1 + THROTTLE
_CHUNK_S = 0.1


def window_of(settings: MeasureSettings) -> float:
    if settings.window_s:
        return float(settings.window_s)
    return min(DEFAULT_WINDOW_S, settings.duration_s / 10.0)


class _Kept:
    """A window's samples: every `stride`-th one; when the buffer fills, every other kept one is
    dropped and the stride doubles (an even spread over the window, bounded memory)."""

    def __init__(self, cap: int):
        self.buf = np.empty(cap, dtype=np.int64)
        self.n = 0
        self.stride = 1
        self.offset = 0  # index in the next chunk of the next sample to keep
        self.seen = 0

    def add(self, chunk: np.ndarray) -> None:
        picks = chunk[self.offset :: self.stride]
        while picks.size:
            take = picks[: self.buf.size - self.n]
            self.buf[self.n : self.n + take.size] = take
            self.n += take.size
            picks = picks[take.size :]
            if self.n == self.buf.size:
                half = self.buf[: self.n : 2].copy()
                self.n = half.size
                self.buf[: self.n] = half
                self.stride *= 2
                picks = picks[1::2]
        self.offset = (self.offset - chunk.size) % self.stride
        self.seen += chunk.size

    def samples(self) -> np.ndarray:
        return self.buf[: self.n].copy()


def _window_stats(samples_ns: np.ndarray, start_s: float, seconds: float, count: int, batch: int) -> Dict[str, Any]:
    ms = samples_ns / 1e6
    lo, hi = median_ci(ms)
    return {
        "start_s": round(start_s, 3),
        "seconds": round(seconds, 3),
        "iterations": count,
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "ci95_low": float(lo),
        "ci95_high": float(hi),
        "throughput_per_s": count * batch / seconds if seconds > 0 else None,
    }


def ratio_ci(first: Dict[str, Any], last: Dict[str, Any]) -> Dict[str, float]:
    """last/first medians, with a 95% CI from the two medians' CIs combined in log space (each
    interval's half-width in log units, added in quadrature)."""

    def log_half(w: Dict[str, Any]) -> float:
        return (math.log(max(w["ci95_high"], 1e-12)) - math.log(max(w["ci95_low"], 1e-12))) / 2

    r = last["median_ms"] / first["median_ms"]
    h = math.sqrt(log_half(first) ** 2 + log_half(last) ** 2)
    return {"ratio": r, "ci95_low": r * math.exp(-h), "ci95_high": r * math.exp(h)}


def onset(windows: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The first window from which every later median lies outside the first window's CI on the same
    side, by more than MIN_CHANGE: when the speed changed for good. None if it never did."""
    first = windows[0]
    m0, lo, hi = first["median_ms"], first["ci95_low"], first["ci95_high"]

    def side(w: Dict[str, Any]) -> int:
        m = w["median_ms"]
        if m > hi and m > m0 * (1 + MIN_CHANGE):
            return 1
        if m < lo and m < m0 * (1 - MIN_CHANGE):
            return -1
        return 0

    sides = [side(w) for w in windows]
    found = None
    for i in range(len(windows) - 1, 0, -1):
        if sides[i] == 0 or (found is not None and sides[i] != sides[found]):
            break
        found = i
    if found is None:
        return None
    return {"window": found, "s": windows[found]["start_s"], "direction": "slower" if sides[found] > 0 else "faster"}


def _evidence(windows: List[Dict[str, Any]], ratio: Dict[str, float], start: Optional[Dict[str, Any]]) -> str:
    first, last = windows[0], windows[-1]
    bits = [
        "last window %.3f ms vs first %.3f ms: x%.3f (95%% CI %.3f-%.3f) over %d windows"
        % (last["median_ms"], first["median_ms"], ratio["ratio"], ratio["ci95_low"], ratio["ci95_high"], len(windows))
    ]
    if start:
        bits.append("%s from %.0f s" % (start["direction"], start["s"]))
    t0, t1 = first.get("telemetry") or {}, last.get("telemetry") or {}
    for key, unit, label in (
        ("cpu_mhz", "MHz", "CPU clock"),
        ("gpu_mhz", "MHz", "GPU clock"),
        ("hottest_c", "C", "hottest"),
    ):
        if key in t0 and key in t1:
            bits.append("%s %.0f -> %.0f %s" % (label, t0[key], t1[key], unit))
    if t1.get("gpu_throttle"):
        bits.append("GPU throttle reasons: %s" % ", ".join(t1["gpu_throttle"]))
    return "; ".join(bits)


def verdict(windows: List[Dict[str, Any]]) -> Dict[str, Any]:
    ratio = ratio_ci(windows[0], windows[-1])
    start = onset(windows)
    throttled = ratio["ci95_low"] > 1 + THROTTLE
    return {
        "throttled": throttled,
        "last_first": ratio,
        "onset": start,
        "evidence": _evidence(windows, ratio, start),
    }


@register
class Sustained(Scenario):
    name = "sustained"
    help = "continuous inference for --duration in --window windows: slowdown over time, throttled or not"
    own_settings = ("window_s",)

    def certain_s(self, settings: MeasureSettings) -> float:
        return settings.duration_s

    def check(self, settings: MeasureSettings) -> Optional[str]:
        w = window_of(settings)
        if w <= 0:
            return "the window must be positive"
        if w * MIN_WINDOWS > settings.duration_s + 1e-9:
            return "a window of %g s leaves fewer than %d windows in the duration of %g s (use a shorter --window)" % (
                w,
                MIN_WINDOWS,
                settings.duration_s,
            )
        return None

    def measure(self, session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
        window_s = window_of(settings)
        n_windows = max(MIN_WINDOWS, int(settings.duration_s / window_s + 1e-9))
        batch = int(settings.input_shape[0]) if settings.input_shape else 1
        chunk_buf = np.empty(1, dtype=np.int64)
        chunk = 1
        windows: List[Dict[str, Any]] = []
        kept: List[np.ndarray] = []
        t_start = time.perf_counter()
        for w in range(n_windows):
            win = _Kept(KEEP_PER_WINDOW)
            w_start = time.perf_counter()
            w_end = t_start + (w + 1) * window_s
            while True:
                if chunk_buf.size < chunk:
                    chunk_buf = np.empty(chunk, dtype=np.int64)
                t0 = time.perf_counter()
                session.timed_loop(chunk, chunk_buf, 0)
                now = time.perf_counter()
                win.add(chunk_buf[:chunk])
                if now >= w_end:
                    break
                per_iter = (now - t0) / chunk
                # at most doubling: one unpreempted first chunk must not plan a chunk past the window
                chunk = max(1, min(2 * chunk, 100_000, int(min(_CHUNK_S, w_end - now) / max(per_iter, 1e-8))))
                ctx.progress(
                    "measure", min(1.0, (now - t_start) / settings.duration_s), "window %d/%d" % (w + 1, n_windows)
                )
            samples = win.samples()
            stats = _window_stats(samples, w_start - t_start, time.perf_counter() - w_start, win.seen, batch)
            if ctx.telemetry is not None:
                stats["telemetry"] = probes.summary(ctx.telemetry.snapshot(), ctx.telemetry)
            windows.append(stats)
            kept.append(samples)
        seconds = time.perf_counter() - t_start
        all_kept = np.concatenate(kept)
        notes: List[str] = []
        total = sum(w["iterations"] for w in windows)
        if all_kept.size > settings.max_iters:
            step = int(math.ceil(all_kept.size / settings.max_iters))
            all_kept = all_kept[::step].copy()
        if all_kept.size < total:
            notes.append("sustained: %d of %d samples kept (evenly over time)" % (all_kept.size, total))
        summary: Dict[str, Any] = {"window_s": window_s, "duration_s": round(seconds, 3), "windows": windows}
        summary.update(verdict(windows))
        if summary["throttled"]:
            notes.append("throttled: " + summary["evidence"])
        return Timed(all_kept, seconds, summary=summary, notes=notes)
