"""A backend that does nothing per inference: the harness's own per-iteration cost.

`--opt busy_us=N` busy-waits N microseconds per inference instead, a controlled slowdown for
validating the regression gate and the scheduler.
"""

from __future__ import annotations

import time

from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, Session, package_version


class NullOptions(BackendOptions):
    busy_us: float = Field(0.0, ge=0, description="busy-wait this many microseconds per inference")


class NullSession(Session):
    def __init__(self, busy_ns: int):
        super().__init__()
        self.busy_ns = busy_ns
        if busy_ns:
            self.run = self._busy  # type: ignore[method-assign]

    def bind(self, inputs):
        pass

    def run(self):
        pass

    def _busy(self):
        end = time.perf_counter_ns() + self.busy_ns
        while time.perf_counter_ns() < end:
            pass

    def outputs(self):
        return []


class NullBackend(Backend):
    name = "null"
    artifact_format = "none"
    does_work = False
    precisions = ("fp32", "fp16", "bf16", "int8")
    devices = ("cpu", "cuda")
    description = "does nothing: measures the harness itself"
    Options = NullOptions

    def version(self):
        return package_version("effbench") or "0"

    def open(self, artifact, settings):
        session = NullSession(int(float(settings.runtime_options.get("busy_us", 0)) * 1000))
        session.precision_ran = settings.precision
        return session
