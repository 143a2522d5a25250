"""latency: one request at a time, until the duration and the iteration count are both met
(optionally until the median's CI is narrow enough)."""

from __future__ import annotations

from ..session import Session
from ..settings import MeasureSettings
from ..timing import measure
from .base import Context, Scenario, Timed, register


def timed_sync(session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
    samples, secs, reached, met = measure(
        session,
        settings.duration_s,
        settings.min_iters,
        settings.target_ci,
        settings.max_duration_s,
        ctx.progress,
        settings.max_iters,
    )
    notes = []
    if samples.size >= settings.max_iters and secs < settings.duration_s:
        notes.append("stopped at --max-iters %d after %.2f s" % (settings.max_iters, secs))
    return Timed(samples, secs, notes=notes, target_ci=settings.target_ci, reached_ci=reached, target_met=met)


@register
class Latency(Scenario):
    name = "latency"
    help = "one request at a time"

    def measure(self, session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
        return timed_sync(session, settings, ctx)
