"""A backend that does nothing per inference: the harness's own per-iteration cost.

`--opt busy_us=N` busy-waits N microseconds per inference instead, a controlled slowdown for
validating the regression gate and the scheduler; `--opt slow_after_s=T --opt slow_factor=F`
multiplies that wait by F from T seconds after the first inference (a device that throttles part-way,
for validating the sustained scenario).
"""

from __future__ import annotations

import time

from pydantic import Field

from effbench.backends.base import Backend, BackendOptions, Session, package_version


class NullOptions(BackendOptions):
    busy_us: float = Field(0.0, ge=0, description="busy-wait this many microseconds per inference")
    slow_after_s: float | None = Field(None, ge=0, description="from this many seconds after the first inference ...")
    slow_factor: float = Field(1.0, gt=0, description="... busy-wait this many times longer (a throttling device)")


class NullSession(Session):
    def __init__(self, busy_ns: int, slow_after_s: float | None = None, slow_factor: float = 1.0):
        super().__init__()
        self.busy_ns = busy_ns
        self.slow_ns = int(busy_ns * slow_factor)
        self.slow_after_ns = None if slow_after_s is None else int(slow_after_s * 1e9)
        self.started_ns: int | None = None
        if busy_ns:
            self.run = self._busy if self.slow_after_ns is None else self._growing  # type: ignore[method-assign]

    def bind(self, inputs):
        pass

    def run(self):
        pass

    def _busy(self):
        end = time.perf_counter_ns() + self.busy_ns
        while time.perf_counter_ns() < end:
            pass

    def _growing(self):
        now = time.perf_counter_ns()
        if self.started_ns is None:
            self.started_ns = now
        slow = self.slow_after_ns is not None and now - self.started_ns >= self.slow_after_ns
        end = now + (self.slow_ns if slow else self.busy_ns)
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
        opts = settings.runtime_options
        slow_after = opts.get("slow_after_s")
        session = NullSession(
            int(float(opts.get("busy_us", 0)) * 1000),
            None if slow_after is None else float(slow_after),
            float(opts.get("slow_factor", 1.0)),
        )
        session.precision_ran = settings.precision
        return session
