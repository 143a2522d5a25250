"""`--dynamic`: one ONNX graph exported with dynamic batch, height and width, measured at each shape
the run lists (its batches x input sizes) on one session, against the static artifact of the same
shape (the run's own cells).

Per shape: the first inference after switching to it from another shape (the re-planning a
dynamic-shape runtime does) and the steady median with its 95% CI; the static cell's record gets
them as `extra.dynamic` with the penalty (dynamic steady / static median). Two passes over the
shapes: the first warms every shape once, the second times the switches, so every shape's switch
comes from a different, already-seen shape."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from effbench.console import console
from effbench.core.runtimes import open_session
from effbench.core.stats import median_ci
from effbench.core.timing import measure
from effbench.errors import UsageError
from effbench.harness.prepare import Checked, PreparedCell, inputs_file
from effbench.harness.result import Result

RUNTIMES = ("onnxruntime",)  # core runtimes that take an ONNX graph with free dimensions
WARM_S = 0.2


def check(checked: Checked) -> None:
    """--dynamic where it cannot run: one line, before any work."""
    b = checked.backend
    if b.core_runtime not in RUNTIMES or b.artifact_format != "onnx":
        raise UsageError(
            f"--dynamic needs a backend that runs one ONNX graph at several shapes ({', '.join(RUNTIMES)}); "
            f"backend {b.name} cannot: drop --dynamic or use --backend ort"
        )
    if checked.spec.kind == "onnx":
        raise UsageError("--dynamic exports from PyTorch: an ONNX file brings its own shapes (drop --dynamic)")
    if checked.target.execution == "remote":
        raise UsageError(f"--dynamic measures on this machine, not on remote device {checked.cfg.device!r}")


def shape_key(batch: int, input_size: int | None) -> str:
    return f"b{batch}@{input_size or 'native'}"


def measure_dynamic(cells: list[PreparedCell], duration_s: float) -> dict[str, dict[str, Any]]:
    """shape key -> the dynamic artifact's figures at that shape."""
    from effbench.export.pipeline import ModelSource, onnx_artifact
    from effbench.models.registry import resolve

    first = cells[0]
    spec = resolve(first.cfg.model, first.cfg.input_size, first.cfg.weights)
    src = ModelSource(spec, first.cfg.pretrained, first.cfg.seed)
    traced = tuple(first.settings.input_shape)
    art = onnx_artifact(src, traced, dynamic=True)
    shapes = [(shape_key(c.cfg.batch_size, c.cfg.input_size), tuple(c.settings.input_shape)) for c in cells]
    feeds = {key: np.load(inputs_file(shape, first.cfg.seed)) for key, shape in shapes}
    session = open_session("onnxruntime", str(art.path), first.settings)
    out: dict[str, dict[str, Any]] = {}
    one = np.empty(1, dtype=np.int64)
    try:
        for key, _ in shapes:  # pass 1: every shape once (first-ever runs)
            session.bind({first.input_name: feeds[key]})
            session.timed_loop(1, one, 0)
            out[key] = {"first_ever_ms": float(one[0]) / 1e6}
        for key, shape in shapes:  # pass 2: the switch, then steady
            session.bind({first.input_name: feeds[key]})
            session.timed_loop(1, one, 0)
            switch_ms = float(one[0]) / 1e6
            end = time.perf_counter() + WARM_S
            while time.perf_counter() < end:
                session.timed_loop(1, one, 0)
            samples, _, _, _ = measure(session, duration_s, 10)
            ms = samples / 1e6
            lo, hi = median_ci(ms)
            out[key].update(
                shape=list(shape),
                first_after_switch_ms=switch_ms,
                steady_median_ms=float(np.median(ms)),
                steady_ci95=[float(lo), float(hi)],
                iterations=int(ms.size),
                artifact="ONNX with dynamic batch/height/width, traced at " + "x".join(map(str, traced)),
                artifact_path=str(art.path),
            )
    finally:
        session.close()
    return out


def attach(static_median_ms: float | None, dyn: dict[str, Any]) -> dict[str, Any]:
    """The static cell's `extra.dynamic`: the dynamic figures and the penalty against this cell."""
    d = dict(dyn)
    if static_median_ms:
        d["static_median_ms"] = static_median_ms
        d["penalty"] = d["steady_median_ms"] / static_median_ms
    return d


def with_dynamic(sink: Callable[[Result], None], prepared: list, duration_s: float) -> Callable[[Result], None]:
    """Measure the dynamic artifact now (before the static cells), and hand each static cell's result
    to `sink` with its shape's dynamic figures attached (and a line printed)."""
    ok = [p for p in prepared if isinstance(p, PreparedCell)]
    dyn = measure_dynamic(ok, duration_s) if ok else {}

    def on_result(res: Result) -> None:
        key = shape_key(res.config.get("batch_size", 1), res.config.get("input_size"))
        if key in dyn:
            d = attach((res.latency_ms or {}).get("median"), dyn[key])
            res = res.with_extra(dynamic=d)
            penalty = (
                f" (x{d['penalty']:.2f} the static artifact's {d['static_median_ms']:.4g} ms)" if "penalty" in d else ""
            )
            console.print(
                f"dynamic {key}: steady {d['steady_median_ms']:.4g} ms{penalty}; first run after a shape switch "
                f"{d['first_after_switch_ms']:.4g} ms",
                highlight=False,
            )
        sink(res)

    return on_result
