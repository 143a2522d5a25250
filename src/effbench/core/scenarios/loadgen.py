"""MLPerf LoadGen's scenarios (singlestream, multistream, server, offline) with effbench's own
session as the system under test.

LoadGen (`mlcommons-loadgen`, module `mlperf_loadgen`) decides when queries arrive, how many
samples each holds and whether the run is VALID (minimum duration and query count, the latency
percentile under its bound with early stopping). The SUT here does one `session.run()` per LoadGen
sample on the inputs the cell bound once, in one worker thread fed by a queue (so LoadGen's issue
thread never waits for an inference), and completes each query when its samples are done.

LoadGen is not part of this dependency-light core's required set: it is imported inside
`measure`, and `unavailable()` refuses these scenarios where it cannot run (the ssh agent on a
device: no aarch64 wheel), before any work. Its results come from `mlperf_log_detail.txt`, one
`:::MLLOG {json}` per line, and its log folder is kept (`settings.loadgen_dir`, named in the summary).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..session import CoreError, Session
from ..settings import MeasureSettings
from .base import Context, Scenario, Timed, register

MODULE = "mlperf_loadgen"
INSTALL = "pip install mlcommons-loadgen==6.0.17 (x86-64 wheels only)"
# The fewest queries LoadGen's early stopping accepts at its percentile with no query over the bound
# (90th: 64; 99th: 662), so that the default run can be VALID.
EARLY_STOPPING_MIN_QUERIES = {"singlestream": 64, "multistream": 662, "server": 662, "offline": 1}
# LoadGen's own cost per query is microseconds: an estimate below this would pre-generate millions
MIN_EXPECTED_NS = 20_000
PROBE_S = 0.5  # the short latency run that sets a default server / offline rate
SERVER_LOAD = 0.5  # default server QPS: this fraction of the rate one-at-a-time inference sustains
# default offline expected QPS: above that rate, so the one query lasts the minimum duration (else INVALID)
OFFLINE_LOAD = 1.5
RESULT_KEYS = (
    "result_validity",
    "result_invalid_reason",
    "result_perf_constraints_met",
    "result_min_duration_met",
    "result_min_queries_met",
    "early_stopping_met",
    "early_stopping_result",
    "result_query_count",
    "result_overlatency_query_count",
    "result_qps_with_loadgen_overhead",
    "result_qps_without_loadgen_overhead",
    "result_scheduled_samples_per_sec",
    "result_completed_samples_per_sec",
    "result_samples_per_second",
    "result_min_latency_ns",
    "result_max_latency_ns",
    "result_mean_latency_ns",
    "num_errors",
)
SETTING_KEYS = (
    "effective_scenario",
    "effective_target_qps",
    "effective_target_latency_ns",
    "effective_target_latency_percentile",
    "effective_min_duration_ms",
    "effective_max_duration_ms",
    "effective_min_query_count",
    "effective_samples_per_query",
    "loadgen_version",
)


def loadgen_available() -> bool:
    return importlib.util.find_spec(MODULE) is not None


def read_detail(path: str) -> Dict[str, Any]:
    """Every `:::MLLOG {json}` line of mlperf_log_detail.txt as key -> value (the last one wins)."""
    out: Dict[str, Any] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith(":::MLLOG "):
                continue
            try:
                entry = json.loads(line[len(":::MLLOG ") :])
            except ValueError:
                continue
            if isinstance(entry, dict) and "key" in entry:
                out[entry["key"]] = entry.get("value")
    return out


def results_of(detail: Dict[str, Any]) -> Dict[str, Any]:
    """LoadGen's own verdict and figures, with the latencies in ms."""
    res: Dict[str, Any] = {k: detail[k] for k in RESULT_KEYS if k in detail}
    percentiles = {}
    for key, value in detail.items():
        if key.startswith("result_") and key.endswith("_percentile_latency_ns"):
            pct = key[len("result_") : -len("_percentile_latency_ns")]
            percentiles["p" + pct.rstrip("0").rstrip(".")] = value / 1e6
        elif key.startswith("early_stopping_latency") and isinstance(value, (int, float)) and value > 0:
            res["early_stopping_estimate_ms"] = value / 1e6  # the estimate of the bounded percentile
    res["percentiles_ms"] = percentiles
    res["valid"] = detail.get("result_validity") == "VALID"
    return res


def why_invalid(res: Dict[str, Any]) -> str:
    bits = []
    if res.get("result_min_duration_met") is False:
        bits.append("the minimum duration was not met")
    if res.get("result_min_queries_met") is False:
        bits.append("too few queries (the run was too short)")
    if res.get("early_stopping_met") is False:
        bits.append("early stopping not met")
    if res.get("result_perf_constraints_met") is False:
        bits.append("the latency bound was not met")
    reason = str(res.get("result_invalid_reason") or "").strip()
    if reason:
        bits.append("LoadGen: " + reason)
    return "; ".join(bits) or "LoadGen gave no reason"


class _Sut:
    """Queries go onto a queue; one worker thread runs each sample's inference on the bound inputs
    and tells LoadGen when a query is complete. Per query: its latency (issue to completion)."""

    def __init__(self, lg: Any, session: Session, capacity: int):
        self.lg, self.session = lg, session
        self.items: List[Tuple[int, list]] = []
        self.cond = threading.Condition()
        self.stop = False
        self.infer_ns = np.empty(capacity, dtype=np.int64)  # inference-only times (session.timed_loop)
        self.n_infer = 0
        self.query_ns: List[int] = []
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._work, name="effbench-loadgen-sut", daemon=True)

    def issue(self, samples: list) -> None:
        with self.cond:
            self.items.append((time.perf_counter_ns(), list(samples)))
            self.cond.notify()

    def flush(self) -> None:
        pass

    def _next(self) -> Optional[Tuple[int, list]]:
        with self.cond:
            while not self.items and not self.stop:
                self.cond.wait()
            return self.items.pop(0) if self.items else None

    def _work(self) -> None:
        lg, one = self.lg, np.empty(1, dtype=np.int64)
        while True:
            item = self._next()
            if item is None:
                return
            issued, samples = item
            if self.error is None:
                try:
                    for _ in samples:
                        self.session.timed_loop(1, one, 0)
                        if self.n_infer < self.infer_ns.size:
                            self.infer_ns[self.n_infer] = one[0]
                            self.n_infer += 1
                except BaseException as e:  # completed anyway, so LoadGen ends; raised after the test
                    self.error = e
            self.query_ns.append(time.perf_counter_ns() - issued)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    def close(self) -> None:
        with self.cond:
            self.stop = True
            self.cond.notify()
        self.thread.join(timeout=30)


def _rate_of_latency_run(session: Session) -> float:
    """Inferences per second, one at a time, over a PROBE_S run (the default server / offline rate)."""
    buf = np.empty(1, dtype=np.int64)
    times: List[int] = []
    end = time.perf_counter() + PROBE_S
    while time.perf_counter() < end or len(times) < 5:
        session.timed_loop(1, buf, 0)
        times.append(int(buf[0]))
    return 1e9 / max(float(np.median(times)), 1.0)


def _log_dir(settings: MeasureSettings, notes: List[str]) -> str:
    if settings.loadgen_dir:
        os.makedirs(settings.loadgen_dir, exist_ok=True)
        return settings.loadgen_dir
    path = tempfile.mkdtemp(prefix="effbench-loadgen-")
    notes.append("LoadGen logs in %s (no log folder was given)" % path)
    return path


class LoadGenScenario(Scenario):
    lg_name = ""  # LoadGen's TestScenario name
    own_settings = ("target_qps", "latency_bound_ms", "samples_per_query")
    percentile = 0.9  # the latency percentile LoadGen bounds in this scenario
    offline = False  # one query holds every sample: the stored samples are inference times

    def unavailable(self, execution: str) -> Optional[str]:
        if execution == "remote":
            return (
                "MLPerf LoadGen does not run in the ssh agent (a compiled module, no wheel for aarch64 boards): "
                "measure this scenario on a local device, or use --scenario latency|throughput there"
            )
        if not loadgen_available():
            return "MLPerf LoadGen is not installed here (%s)" % INSTALL
        return None

    def check(self, settings: MeasureSettings) -> Optional[str]:
        if settings.target_qps is not None and settings.target_qps <= 0:
            return "--target-qps must be positive"
        if settings.latency_bound_ms is not None and settings.latency_bound_ms <= 0:
            return "--latency-bound must be positive"
        if settings.samples_per_query < 1:
            return "--samples-per-query must be at least 1"
        return None

    def configure(self, lg: Any, ts: Any, settings: MeasureSettings, session: Session, notes: List[str]) -> None:
        """Scenario-specific TestSettings."""

    def measure(self, session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
        try:
            import mlperf_loadgen as lg
        except ImportError:
            raise CoreError("missing_runtime", "MLPerf LoadGen is not installed (%s)" % INSTALL) from None
        notes: List[str] = []
        ts = lg.TestSettings()
        ts.scenario = getattr(lg.TestScenario, self.lg_name)
        ts.mode = lg.TestMode.PerformanceOnly
        ts.min_duration_ms = int(settings.duration_s * 1000)
        ts.max_duration_ms = int(max(settings.max_duration_s, settings.duration_s) * 1000)
        floor = EARLY_STOPPING_MIN_QUERIES[self.name]
        ts.min_query_count = max(settings.min_iters, floor)
        self.configure(lg, ts, settings, session, notes)
        out_dir = _log_dir(settings, notes)
        log_out = lg.LogOutputSettings()
        log_out.outdir = out_dir
        log_out.copy_summary_to_stdout = False
        log = lg.LogSettings()
        log.log_output = log_out
        log.enable_trace = False
        capacity = max(settings.max_iters, 1)
        sut_impl = _Sut(lg, session, capacity)
        sut_impl.thread.start()
        sut = lg.ConstructSUT(sut_impl.issue, sut_impl.flush)
        qsl = lg.ConstructQSL(1, 1, lambda idx: None, lambda idx: None)  # one sample: the inputs bound once
        ctx.progress("measure", 0.0, "LoadGen %s" % self.lg_name)
        t0 = time.perf_counter()
        try:
            lg.StartTestWithLogSettings(sut, qsl, ts, log)
        finally:
            seconds = time.perf_counter() - t0
            sut_impl.close()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        if sut_impl.error is not None:
            raise sut_impl.error
        ctx.progress("measure", 1.0, "LoadGen %s: %.1f s" % (self.lg_name, seconds))
        detail_path = os.path.join(out_dir, "mlperf_log_detail.txt")
        detail = read_detail(detail_path) if os.path.isfile(detail_path) else {}
        res = results_of(detail)
        if not res["valid"]:
            notes.append("LoadGen %s result INVALID: %s" % (self.lg_name, why_invalid(res)))
        infer = sut_impl.infer_ns[: sut_impl.n_infer]
        summary: Dict[str, Any] = {
            "loadgen": res,
            "settings": {
                k[len("effective_") :] if k.startswith("effective_") else k: detail[k]
                for k in SETTING_KEYS
                if k in detail
            },
            "log_dir": out_dir,
            "samples": "inference times" if self.offline else "query latencies (issue to completion, timed by the SUT)",
            "inferences": int(infer.size),
            "inference_median_ms": float(np.median(infer)) / 1e6 if infer.size else None,
        }
        samples = infer.copy() if self.offline else np.asarray(sut_impl.query_ns, dtype=np.int64)
        if samples.size > settings.max_iters:
            samples = samples[:: int(np.ceil(samples.size / settings.max_iters))].copy()
        return Timed(samples, seconds, summary=summary, notes=notes)


def _expected_latency_ns(session: Session, samples_per_query: int) -> int:
    """LoadGen pre-generates a (single/multi)stream run's queries from this estimate: one too high
    ends the run before the minimum duration (INVALID), so it is half of what a short latency run says."""
    return max(MIN_EXPECTED_NS, int(samples_per_query / _rate_of_latency_run(session) * 1e9 * 0.5))


@register
class SingleStream(LoadGenScenario):
    name = "singlestream"
    lg_name = "SingleStream"
    help = "MLPerf LoadGen SingleStream: one query at a time, p90 with early stopping"

    def configure(self, lg: Any, ts: Any, settings: MeasureSettings, session: Session, notes: List[str]) -> None:
        ts.single_stream_expected_latency_ns = _expected_latency_ns(session, 1)


@register
class MultiStream(LoadGenScenario):
    name = "multistream"
    lg_name = "MultiStream"
    percentile = 0.99
    help = "MLPerf LoadGen MultiStream: --samples-per-query frames per query (default 8), p99 with early stopping"

    def configure(self, lg: Any, ts: Any, settings: MeasureSettings, session: Session, notes: List[str]) -> None:
        ts.multi_stream_samples_per_query = settings.samples_per_query
        ts.multi_stream_expected_latency_ns = _expected_latency_ns(session, settings.samples_per_query)


def _default_rate(settings: MeasureSettings, session: Session, fraction: float, what: str, notes: List[str]) -> float:
    if settings.target_qps is not None:
        return float(settings.target_qps)
    rate = _rate_of_latency_run(session) * fraction
    notes.append(
        "no --target-qps: %s %.4g QPS (%.0f%% of the rate of a %.1f s one-at-a-time latency run)"
        % (what, rate, fraction * 100, PROBE_S)
    )
    return rate


@register
class Server(LoadGenScenario):
    name = "server"
    lg_name = "Server"
    percentile = 0.99
    help = "MLPerf LoadGen Server: Poisson arrivals at --target-qps, p99 under --latency-bound with early stopping"

    def configure(self, lg: Any, ts: Any, settings: MeasureSettings, session: Session, notes: List[str]) -> None:
        ts.server_target_qps = _default_rate(settings, session, SERVER_LOAD, "server target", notes)
        if settings.latency_bound_ms is not None:
            ts.server_target_latency_ns = int(settings.latency_bound_ms * 1e6)
            ts.server_target_latency_percentile = self.percentile


@register
class Offline(LoadGenScenario):
    name = "offline"
    lg_name = "Offline"
    offline = True
    help = "MLPerf LoadGen Offline: all samples in one query, samples/s"

    def configure(self, lg: Any, ts: Any, settings: MeasureSettings, session: Session, notes: List[str]) -> None:
        ts.offline_expected_qps = _default_rate(settings, session, OFFLINE_LOAD, "offline expected", notes)
