"""Scenarios: registered measuring strategies (`base.Scenario`), one file each.

`run_scenario` is what every launcher's measuring process calls: first inference, warm-up, then
the scenario the settings name."""

from __future__ import annotations

from typing import Optional

from ..probes import Telemetry
from ..session import Session
from ..settings import MeasureSettings
from ..timing import Progress, ScenarioRun, first_inference, warmup
from . import latency, loadgen, sustained, throughput  # noqa: F401  (each registers itself)
from .base import SCENARIOS, Context, Scenario, Timed, get_scenario, own_settings, register

__all__ = ["SCENARIOS", "Context", "Scenario", "Timed", "get_scenario", "own_settings", "register", "run_scenario"]


def run_scenario(
    session: Session,
    settings: MeasureSettings,
    progress: Optional[Progress] = None,
    telemetry: Optional[Telemetry] = None,
) -> ScenarioRun:
    scenario = get_scenario(settings.scenario)
    first = first_inference(session)
    w_iters, w_s = warmup(session, settings.warmup_s, settings.warmup_iters, progress)
    t = scenario.measure(session, settings, Context(progress or (lambda *a: None), telemetry))
    return ScenarioRun(
        t.samples_ns,
        first,
        w_iters,
        w_s,
        t.seconds,
        t.target_ci,
        t.reached_ci,
        t.target_met,
        t.throughput,
        t.notes,
        t.summary,
    )
