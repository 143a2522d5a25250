"""Launchers: where a prepared cell is measured — in this process, in a worker process on this
machine, on an ssh device through the agent, or on a farm node through Ray. Each takes a
PreparedCell and returns a Result built by the one assembly step (harness.assemble), failures
classified in one place (harness.failures)."""

from __future__ import annotations

from typing import Callable, Protocol

from effbench.harness.prepare import PreparedCell
from effbench.harness.result import Result

Event = Callable[[dict], None]


class Launcher(Protocol):
    def run(self, cell: PreparedCell, on_event: Event) -> Result: ...

    def close(self) -> None: ...
