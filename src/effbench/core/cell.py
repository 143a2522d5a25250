"""One measurement, the same wherever it runs (in the harness, a worker, the remote agent, a farm
node): load, bind, first inference, warm-up, measure, optional per-layer profile, outputs, memory."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from . import armcpu
from .fingerprint import cpu_clusters, fingerprint, loadavg
from .memory import MemoryMeter
from .probes import Telemetry, gate
from .scenarios import run_scenario
from .session import Session
from .settings import MeasureSettings
from .timing import Progress
from .tuning import tuned_summary


@dataclass
class Measured:
    """What a measuring process hands back: raw samples and everything observed around them."""

    settings: Dict[str, Any]  # the settings as they reached this process
    load_s: float
    first_ns: int
    warmup_iters: int
    warmup_s: float
    measure_s: float
    samples_ns: np.ndarray
    precision_ran: str
    runtime_info: Dict[str, Any]
    outputs: List[np.ndarray]
    memory: Dict[str, Any]
    env: Dict[str, Any]
    target_ci: Optional[float] = None
    reached_ci: Optional[float] = None
    target_met: Optional[bool] = None
    throughput: Optional[Dict[str, Any]] = None  # images, seconds, images_per_s, requests_in_flight, info
    notes: List[str] = field(default_factory=list)
    device_memory: Optional[Dict[str, Any]] = None
    loadavg_before: Optional[float] = None
    loadavg_after: Optional[float] = None
    profile_layers: Optional[List[Dict[str, Any]]] = None
    runtime_graph: Optional[List[Dict[str, Any]]] = None
    after: Dict[str, Any] = field(default_factory=dict)  # what the caller's after-hook returned (energy, accuracy)
    imported: Dict[str, bool] = field(default_factory=dict)  # heavy modules present in this process
    scenario_summary: Dict[str, Any] = field(default_factory=dict)  # the scenario's own summary
    # {"before", "after": probe snapshots, "unavailable": {probe: why}, "gate": the thermal gate's wait}
    telemetry: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Measured:
        d = dict(data)
        d["samples_ns"] = np.asarray(d["samples_ns"], dtype=np.int64)
        d["outputs"] = [np.asarray(o) for o in d.get("outputs") or []]
        return cls(**d)


def _imported() -> Dict[str, bool]:
    return {name: name in sys.modules for name in ("torch", "timm")}


def _before(settings: MeasureSettings, progress: Progress):
    """Cool-down pause, thermal gate and the first telemetry reading, before anything is loaded."""
    if settings.cooldown_s > 0:
        progress("cooldown", 0.0, "%.0f s pause before the cell" % settings.cooldown_s)
        time.sleep(settings.cooldown_s)
    if not settings.telemetry and settings.max_start_temp is None:
        return None, {}
    telemetry = Telemetry()
    record: Dict[str, Any] = {"unavailable": telemetry.unavailable, "tuning": tuned_summary()}
    if settings.max_start_temp is not None:
        record["gate"] = gate.wait_until_cool(telemetry, settings.max_start_temp, settings.cooldown_timeout_s, progress)
    if settings.telemetry:
        record["before"] = telemetry.snapshot()
        return telemetry, record
    return None, record


def pinned_cpus(cpus: Optional[Union[List[int], str]]) -> Optional[List[int]]:
    """The CPU indices to pin to: a list as given, or the `big` / `little` cluster of this machine
    (among the CPUs this process may use)."""
    if not isinstance(cpus, str):
        return cpus
    chosen = armcpu.cluster_cpus(cpus, cpu_clusters())
    if hasattr(os, "sched_getaffinity"):
        usable = os.sched_getaffinity(0)
        chosen = [c for c in chosen if c in usable]
        if not chosen:
            raise ValueError("--cpus %s: none of those CPUs is usable by this process" % cpus)
    return chosen


def measure_cell(
    open_session: Callable[[], Session],
    settings: MeasureSettings,
    inputs: Dict[str, np.ndarray],
    progress: Optional[Progress] = None,
    after: Optional[Callable[[Session], Dict[str, Any]]] = None,
) -> Measured:
    """`after(session)` runs once the measurement is done, on the still-open session (energy windows,
    an accuracy evaluation): never inside a timed region."""
    progress = progress or (lambda *a: None)
    cpus = pinned_cpus(settings.cpus)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)  # before any runtime starts its thread pool
    telemetry, record = _before(settings, progress)
    load_before = loadavg()
    mem = MemoryMeter()
    progress("load", 0.0, settings.runtime)
    mem.start_load()
    t0 = time.perf_counter()
    session = open_session()
    try:
        session.bind(inputs)
        load_s = time.perf_counter() - t0
        mem.end_load()
        progress("load", 1.0, "%.2f s" % load_s)
        m = run_scenario(session, settings, progress, telemetry)
        if telemetry is not None:
            record["after"] = telemetry.snapshot()
        layers = graph = None
        if settings.profile_iters:
            progress("profile", 0.0, "per-layer times")
            found = session.profile(settings.profile_iters)
            layers = [lt.to_dict() for lt in found] if found is not None else None
            graph = session.runtime_graph()
        outputs = session.outputs()
        memory = mem.report()
        device_memory = session.device_memory()
        extra = after(session) if after else {}
        session.late_info()
        precision_ran, runtime_info = session.precision_ran, dict(session.runtime_info)
    finally:
        session.close()
    tp = None
    if m.throughput is not None:
        t = m.throughput
        tp = {
            "images": t.images,
            "seconds": t.seconds,
            "images_per_s": t.images_per_s,
            "requests_in_flight": t.requests_in_flight,
            "info": t.info,
        }
    return Measured(
        settings=settings.to_dict(),
        load_s=load_s,
        first_ns=int(m.first_ns),
        warmup_iters=int(m.warmup_iters),
        warmup_s=m.warmup_s,
        measure_s=m.measure_s,
        samples_ns=m.samples_ns,
        precision_ran=precision_ran,
        runtime_info=runtime_info,
        outputs=list(outputs),
        memory=memory,
        env=fingerprint(settings.threads, cpus, cluster=settings.cpus if isinstance(settings.cpus, str) else None),
        target_ci=m.target_ci,
        reached_ci=m.reached_ci,
        target_met=m.target_met,
        throughput=tp,
        notes=m.notes,
        device_memory=device_memory,
        loadavg_before=load_before,
        loadavg_after=loadavg(),
        profile_layers=layers,
        runtime_graph=graph,
        after=extra or {},
        imported=_imported(),
        scenario_summary=m.summary,
        telemetry=record,
    )
