"""Measuring ONNX graphs (single kernels, whole models) on this machine through a backend, with the
core's timing loop, in a spawned worker that imports neither torch nor timm.

A single-kernel graph's latency holds more than the kernel: the runtime's cost of one inference
call and the layout conversions at the graph's edges (OpenVINO reorders planar inputs into its
blocked layouts and back), which a kernel inside a model does not pay. So a kernel's own time is
read from the runtime's per-layer profile of that graph, less its boundary layers; only a backend
without a profile falls back to the latency less the call overhead of a trivial graph. A backend
that opens no ONNX (LiteRT) measures the graphs converted to its format (effbench.predict.convert).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from effbench.core.lifeline import SpawnedPool
from effbench.errors import RunFailed
from effbench.predict.convert import convert_jobs

if TYPE_CHECKING:
    from effbench.core.settings import MeasureSettings
    from effbench.predict.kernels import Kernel


@dataclass(frozen=True)
class Window:
    """How long one graph is measured: short for kernels, longer for whole models."""

    warmup_s: float = 0.02
    warmup_iters: int = 5
    duration_s: float = 0.08
    min_iters: int = 15
    profile_iters: int = 25  # kernels: per-layer profiles whose median is the kernel's time

    def settings(
        self, backend: str, input_shape: list[int], threads: int | None, runtime_options: dict[str, Any]
    ) -> MeasureSettings:
        from effbench.core.settings import MeasureSettings

        return MeasureSettings(
            runtime=backend,
            input_shape=list(input_shape),
            threads=threads,
            warmup_s=self.warmup_s,
            warmup_iters=self.warmup_iters,
            duration_s=self.duration_s,
            min_iters=self.min_iters,
            max_duration_s=max(1.0, 4 * self.duration_s),
            profile_iters=self.profile_iters or None,
            runtime_options=runtime_options,
        )


KERNEL_WINDOW = Window()
MODEL_WINDOW = Window(warmup_s=0.3, warmup_iters=10, duration_s=1.0, min_iters=30, profile_iters=0)
# runtime layers that are the graph's edges, not the kernel: inputs, outputs, layout conversions
BOUNDARY_LAYERS = {"Reorder", "Parameter", "Result", "Input", "Output", "Constant", "ReorderInput", "ReorderOutput"}


def kernel_job(kernel: Kernel, directory: Path) -> dict[str, Any]:
    """The job measuring a kernel's single-kernel graph, kept as directory/kernels/SIGNATURE.onnx."""
    return {
        "path": str(directory / "kernels" / f"{kernel.signature}.onnx"),
        "inputs": dict(zip(kernel.inputs, kernel.input_shapes)),
        "signature": kernel.signature,
    }


def call_overhead_graph(directory: str) -> str:
    """A graph whose inference is only the call: one add of two numbers."""
    import onnx
    from onnx import TensorProto, helper

    path = os.path.join(directory, "call-overhead.onnx")
    if not os.path.exists(path):
        node = helper.make_node("Add", ["x", "one"], ["y"], name="add")
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        graph = helper.make_graph(
            [node],
            "call",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
            [one],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(model, path + ".tmp")
        os.replace(path + ".tmp", path)
    return path


def _measure_one(
    backend: Any,
    path: str,
    inputs: dict[str, list[int]],
    window: Window,
    threads: int | None,
    runtime_options: dict[str, Any],
) -> Any:
    """{median_ns, iters} of the graph's latency, or (with window.profile_iters) {kernel_ns, layers}: the
    median over profiled inferences of the summed time of its non-boundary layers."""
    from effbench.backends.base import ArtifactRef
    from effbench.core.scenarios import run_scenario
    from effbench.core.timing import warmup

    shapes = list(inputs.values())
    settings = window.settings(backend.name, shapes[0], threads, runtime_options)
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in inputs.items()}
    session = backend.open(ArtifactRef(Path(path).suffix[1:], path), settings)
    try:
        session.bind(feeds)
        if window.profile_iters:
            warmup(session, window.warmup_s, window.warmup_iters)
            totals, layers = [], []
            for _ in range(window.profile_iters):
                found = session.profile(1)
                if found is None:
                    break
                layers = [lt for lt in found if lt.op_type not in BOUNDARY_LAYERS]
                totals.append(sum(lt.time_ms for lt in layers) * 1e6)
            if totals:
                return {"kernel_ns": float(np.median(totals)), "layers": [lt.op_type for lt in layers]}
        m = run_scenario(session, settings, None)
    finally:
        session.close()
    return {"median_ns": float(np.median(m.samples_ns)), "iters": int(m.samples_ns.size)}


def measure_batch(
    backend_name: str,
    jobs: list[dict[str, Any]],
    window: Window,
    threads: int | None,
    runtime_options: dict[str, Any],
    overhead_path: str | None,
) -> dict[str, Any]:
    """In the worker: each job {path, inputs: {name: shape}} -> what _measure_one gave, or {error}; with
    the call overhead measured before and after the batch (their mean is the batch's overhead)."""
    from effbench.backends.registry import get_backend

    backend = get_backend(backend_name)
    overhead = []
    if overhead_path:
        overhead.append(_call_overhead(backend, overhead_path, window, threads, runtime_options))
    out = []
    for job in jobs:
        if "error" in job:  # its graph could not be converted to the backend's format
            out.append({"error": job["error"]})
            continue
        try:
            path = job.get("artifact", job["path"])
            out.append(_measure_one(backend, path, job["inputs"], window, threads, runtime_options))
        except Exception as e:  # a kernel the runtime cannot compile on its own is recorded, not fatal
            out.append({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]})
    if overhead_path:
        overhead.append(_call_overhead(backend, overhead_path, window, threads, runtime_options))
    return {"results": out, "overhead_ns": float(np.mean(overhead)) if overhead else 0.0}


def _call_overhead(
    backend: Any, path: str, window: Window, threads: int | None, runtime_options: dict[str, Any]
) -> float:
    timed = Window(window.warmup_s, window.warmup_iters, window.duration_s, window.min_iters, profile_iters=0)
    return _measure_one(backend, path, {"x": [1, 1]}, timed, threads, runtime_options)["median_ns"]


class Measurer:
    """A spawned worker that measures batches of graphs; the caller stores each batch as it returns.
    The worker dies with this process, and is killed when the `with` block ends by an exception.
    With `artifact_format` other than onnx, each batch is first converted into `convert_dir`."""

    def __init__(
        self,
        backend: str,
        threads: int | None,
        runtime_options: dict[str, Any],
        artifact_format: str = "onnx",
        convert_dir: Path | None = None,
    ):
        self.backend, self.threads, self.runtime_options = backend, threads, runtime_options
        self.format, self.convert_dir = artifact_format, convert_dir
        self.pool = SpawnedPool()

    def run(
        self,
        jobs: list[dict[str, Any]],
        window: Window,
        overhead_path: str | None = None,
        batch: int | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[tuple[list[dict], dict]]:
        """(jobs of the batch, what measure_batch returned) per batch, until done or `stop()`. Converted
        batches are smaller (a conversion takes seconds), so a budget stops a build near its time."""
        batch = batch or (40 if self.format == "onnx" else 8)
        overhead_path = self._converted_overhead(overhead_path)
        for i in range(0, len(jobs), batch):
            if stop():
                return
            part = jobs[i : i + batch]
            todo = self.converted(part)
            yield (
                part,
                self.pool.submit(
                    measure_batch, self.backend, todo, window, self.threads, self.runtime_options, overhead_path
                ).result(),
            )

    def converted(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The jobs with their graphs in the backend's format (see convert_jobs); done ones kept."""
        if self.format == "onnx" or all("artifact" in j or "error" in j for j in jobs):
            return jobs
        return convert_jobs(jobs, self.format, self.convert_dir or Path(jobs[0]["path"]).parent)

    def _converted_overhead(self, path: str | None) -> str | None:
        if path is None or self.format == "onnx":
            return path
        job = self.converted([{"path": path, "inputs": {"x": [1, 1]}}])[0]
        if "error" in job:
            raise RunFailed(f"the empty-graph call could not be converted: {job['error']}")
        return str(job["artifact"])

    def close(self, abandon: bool = False) -> None:
        self.pool.close(abandon)

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abandon=exc_type is not None)
