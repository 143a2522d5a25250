"""What `bench run` and `bench sweep` share around their cells: the local workers' fork server,
started early so that its imports overlap the checks, and the lines that concern a whole run."""

from __future__ import annotations

from typing import Any

from effbench.console import console
from effbench.errors import EffbenchError


def early_fork_server(isolate: bool) -> Any:
    """The fork server, started before this process imports the harness: its imports (numpy, the
    measuring code) overlap ours. Its runtimes follow once the cells are known (`local_workers`)."""
    if not isolate:
        return None
    from effbench.harness.forkserver import start_fork_server

    return start_fork_server()


def local_workers(isolate: bool, backends: list[str], server: Any = None) -> dict:
    """The local launcher, on `server` (or a fork server started now), which is told to import the
    runtimes these backends need: its imports overlap the checks and the preparation done here."""
    if not isolate:
        return {}
    from effbench.backends.registry import get_backend
    from effbench.harness.launchers.local import Workers
    from effbench.harness.scheduler import LOCAL_LANE

    preload: list[str] = []
    for name in dict.fromkeys(backends):
        try:
            preload.extend(get_backend(name).preload)
        except EffbenchError:
            pass  # the checks say what is wrong with the name
    workers = Workers(tuple(dict.fromkeys(preload)), server)
    workers.start_server()
    return {LOCAL_LANE: workers}


def say_once(records: list[dict]) -> None:
    """What concerns a whole run rather than each result (a thermal gate with no sensor)."""
    from effbench.harness.telemetry import gate_skipped_lines

    for line in gate_skipped_lines(records):
        console.print(f"[yellow]{line}[/]")
