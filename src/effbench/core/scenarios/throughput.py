"""throughput: the runtime's own concurrency (requests in flight) where it has one, else
synchronous batched runs (said in a note)."""

from __future__ import annotations

import numpy as np

from ..session import Session
from ..settings import MeasureSettings
from .base import Context, Scenario, Timed, register
from .latency import timed_sync


@register
class Throughput(Scenario):
    name = "throughput"
    help = "requests in flight (the runtime's async machinery)"

    def measure(self, session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
        tp = session.run_throughput(settings.duration_s, settings.min_iters, settings.requests)
        if tp is None:
            timed = timed_sync(session, settings, ctx)
            timed.notes.insert(0, "runtime has no concurrent mode here: throughput from synchronous batched runs")
            return timed
        samples = (np.asarray(tp.request_latencies_ms, dtype=np.float64) * 1e6).astype(np.int64)
        return Timed(samples, tp.seconds, throughput=tp)
