"""What runs in the measuring process on this machine (a forked or spawned worker, or the harness
itself with --in-process): open the artifact through its backend and measure, then energy windows
on the still-open session."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from effbench.backends.base import ArtifactRef
from effbench.backends.registry import get_backend
from effbench.core.cell import Measured, measure_cell
from effbench.core.protocol import Channel
from effbench.core.settings import MeasureSettings
from effbench.harness.failures import classify

Progress = Callable[[str, float, str], None]


def warm() -> None:
    """What every worker would otherwise redo: the backend registry (entry points) and the machine's
    fingerprint facts, the telemetry probes' imports. The fork server calls this once before forking workers."""
    from effbench.backends.registry import all_backends
    from effbench.core.fingerprint import fingerprint

    all_backends()
    fingerprint()
    try:  # the NVML telemetry probe's import (0.2 s), once here rather than in every worker
        import pynvml  # noqa: F401
    except ImportError:
        pass


def measure_payload(payload: dict[str, Any], progress: Progress | None = None) -> Measured:
    """Measure the cell a PreparedCell.payload() describes."""
    from effbench.harness.meters.energy import EnergyPlan, idle_before_run, measure_energy

    backend = get_backend(payload["backend"])
    settings = MeasureSettings.from_dict(payload["settings"])
    artifact = ArtifactRef.from_dict(payload["artifact"])
    inputs = {payload["input_name"]: np.load(payload["inputs_path"])}
    plan = EnergyPlan.of(settings)  # the settings are the whole payload: no option string is read here
    idle = idle_before_run(plan)  # before loading, while the device is really idle

    def after(session) -> dict[str, Any]:
        out = {"energy": measure_energy(session, plan, progress, idle)}
        if payload.get("eval"):  # accuracy on the very session that was timed, after the timing
            from effbench.accuracy.data import PreparedImages
            from effbench.accuracy.evaluate import evaluate

            images = PreparedImages.open(payload["eval"]["path"])
            out["eval"] = evaluate(
                session,
                images,
                batch_size=payload["eval"]["batch_size"],
                input_name=payload["input_name"],
                progress=progress,
            ).to_dict()
        if payload.get("runtime_graph"):
            out["runtime_graph"] = session.runtime_graph()
        return out

    return measure_cell(lambda: backend.open(artifact, settings), settings, inputs, progress, after)


def serve(payload: dict[str, Any], chan: Channel) -> None:
    """Measure and send the answer on `chan`: {"event": "result", "measured": ...} or
    {"event": "error", "status", "error", "extra"}; never raises (the answer says what went wrong)."""
    try:
        measured = measure_payload(payload, chan.progress)
    except BaseException as e:  # a runtime's own failure is a record, never a lost sweep
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        chan.send({"event": "error", **classify(e)})
        return
    chan.send({"event": "result", "measured": measured.to_dict()})
