"""Building and validating a predictor on this machine.

Build: export the zoo (the model cards plus timm names) at its resolutions, find every model's
kernels, cut each distinct kernel out as a single-kernel ONNX graph, measure the graphs and the
whole zoo models through the backend, fit. Measurements go to JSON Lines files as they are made, so
a build stopped by its budget (or Ctrl-C) resumes where it stopped. A zoo model that fails to export
or measure is recorded and the build goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from effbench.errors import UsageError
from effbench.predict.convert import CONVERTERS, graph_format
from effbench.predict.crossval import unseen_model_cv
from effbench.predict.kernels import Kernel, cut, detect, load
from effbench.predict.measure import (
    KERNEL_WINDOW,
    MODEL_WINDOW,
    Measurer,
    Window,
    call_overhead_graph,
    kernel_job,
)
from effbench.predict.passes import add_pass, merged, pass_counts, repeat_jobs
from effbench.predict.predictor import Predictor, fit, new_data, predictor_id, predictors_dir

Progress = Callable[[str], None]
SLACK = 0.03  # of the budget, left by the second pass: the whole-model rounds' reserve is an estimate
CONVERT_S = 15.0  # about what converting a zoo model to a backend's own format takes (LiteRT, measured)


@dataclass
class ZooModel:
    name: str
    input_shape: list[int]  # N, C, H, W
    onnx_path: str
    kernels: list[Kernel]
    flops: int
    graph: Any = field(default=None, repr=False)  # the shaped graph, kept while a build cuts kernels out of it

    @property
    def key(self) -> str:
        return f"{self.name}@{self.input_shape[-1]}"


@dataclass
class BuildReport:
    predictor: Predictor
    path: Path
    seconds: float
    kernels_measured: int
    kernels_total: int
    models_measured: int
    failed: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True
    kept: Predictor | None = None  # the installed predictor this build did not replace (it covers more)


def check_target(backend_name: str, device: str) -> Any:
    """The backend (canonical) and device a predictor can be built or used for, or a one-line error."""
    from effbench.backends.registry import canonical_name, get_backend

    backend = get_backend(canonical_name(backend_name))
    if backend.core_runtime is None:
        raise UsageError(
            f"a predictor measures ONNX kernels through a core runtime; {backend.name} has none "
            "(use openvino or onnxruntime)"
        )
    return backend


def local_device(device: str) -> bool:
    return device.split(":")[0] == "cpu"


def identity(backend: Any, threads: int | None = 1) -> dict[str, Any]:
    """What a prediction must match: the runtime and its version, the CPU, the thread count."""
    from effbench.backends.base import package_version
    from effbench.core.fingerprint import cpu_model

    return {
        "backend_version": backend.version(),
        "packages": {p: package_version(p) for p in backend.packages if package_version(p)},
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "precision": "fp32",
        "batch": 1,
    }


def work_dir(pid: str, ident: dict[str, Any]) -> Path:
    from effbench.paths import cache_root

    digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    path = cache_root() / "predict" / f"{pid}-{digest}"
    (path / "kernels").mkdir(parents=True, exist_ok=True)
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a stopped build
    return rows


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def zoo_model(name: str, input_size: int | None) -> ZooModel:
    """Export (through the artifact cache) and find the kernels of one model at one resolution."""
    from effbench.export.pipeline import ModelSource, onnx_artifact
    from effbench.models.data_config import with_data_config
    from effbench.models.registry import resolve

    spec = with_data_config(resolve(name, input_size), input_size)  # a factory at its declared size
    shape = [1, *spec.input_shape]
    art = onnx_artifact(ModelSource(spec), tuple(shape))
    graph = load(str(art.path), shape)
    kernels = detect(graph)
    return ZooModel(spec.id, shape, str(art.path), kernels, sum(k.flops for k in kernels), graph)


def kernel_jobs(models: list[ZooModel], directory: Path, measured: set[str]) -> tuple[list[dict], dict[str, Kernel]]:
    """One job per distinct kernel not measured yet, the biggest (most FLOPs) first; its
    single-kernel graph written once."""
    import onnx

    jobs: list[dict[str, Any]] = []
    seen: dict[str, Kernel] = {}
    for m in models:
        for k in m.kernels:
            if k.signature in seen:
                continue
            seen[k.signature] = k
            if k.signature in measured:
                continue
            job = kernel_job(k, directory)
            path = Path(job["path"])
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                onnx.save(cut(m.graph, k), str(tmp))
                tmp.replace(path)
            jobs.append(job)
    jobs.sort(key=lambda j: -seen[str(j["signature"])].flops)
    return jobs, seen


def exported_zoo(
    names: list[str],
    resolutions: list[int | None],
    progress: Progress,
    failed: list[dict[str, str]],
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[ZooModel]:
    """The zoo models one at a time, exported as they are asked for, until `stop()`."""
    seen: set[str] = set()
    for i, name in enumerate(names, 1):
        for size in dict.fromkeys(resolutions):
            if stop():
                return
            label = f"{name}@{size or 'default'}"
            try:
                m = zoo_model(name, size)
            except Exception as e:  # a zoo model that does not export here is recorded, the build goes on
                failed.append({"model": label, "phase": "export", "error": _first(e)})
                progress(f"[{i}/{len(names)}] {label}: skipped ({_first(e)})")
                continue
            if m.key in seen:
                continue
            seen.add(m.key)
            progress(f"[{i}/{len(names)}] {m.key}: {len(m.kernels)} kernels")
            yield m


def _first(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def _inputs_of(onnx_path: str, shape: list[int]) -> dict[str, list[int]]:
    import onnx

    proto = onnx.load(onnx_path, load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    names = [vi.name for vi in proto.graph.input if vi.name not in inits]
    return {names[0]: shape}


def build(
    backend_name: str,
    device: str,
    zoo: list[str],
    resolutions: list[int | None],
    budget_s: float,
    progress: Progress,
    fresh: bool = False,
    window: Window = KERNEL_WINDOW,
    model_window: Window = MODEL_WINDOW,
    threads: int | None = 1,
    rounds: int = 2,
) -> BuildReport:
    """`threads`: the runtime's thread count the predictor is for (1 by default: on a shared machine a
    single thread's latency is the one that repeats). Whole models are measured in `rounds`
    interleaved rounds (model A B C ... then again), their median taken."""
    backend = check_target(backend_name, device)
    if not local_device(device):
        raise UsageError(
            f"a predictor is built on the machine it predicts: run `bench predictor build` on {device!r} "
            "itself, then share it with `bench predictor export` / `bench predictor import`"
        )
    reason = backend.unavailable_reason(device)
    if reason:
        raise UsageError(f"{backend.name} is not usable here: {reason}")
    t0 = time.perf_counter()
    ident = identity(backend, threads)
    pid = predictor_id(backend.name, device)
    wdir = work_dir(pid, ident)
    table_path, models_path = wdir / "kernels.jsonl", wdir / "models.jsonl"
    if fresh:
        for p in (table_path, models_path):
            p.unlink(missing_ok=True)
    failed: list[dict[str, str]] = []
    progress(f"building on the zoo: {len(zoo)} models x {len(resolutions)} resolution(s), each exported then measured")
    rows = merged(_read_jsonl(table_path))
    model_rows = {r["key"]: r for r in _read_jsonl(models_path)}
    runtime_options = {"model_cache": False} if backend.name == "openvino" else {}
    deadline = t0 + budget_s
    per_model_s = rounds * (model_window.warmup_s + model_window.duration_s + 0.6)
    fmt = graph_format(backend.artifact_format)
    if fmt != "onnx":
        per_model_s += CONVERT_S  # each whole model is converted once before its rounds
    models: list[ZooModel] = []
    kernels: dict[str, Kernel] = {}

    def reserve() -> float:  # the whole-model rounds still owed to the models exported so far
        return per_model_s * sum(m.key not in model_rows for m in models)

    def out_of_time(extra_s: float = 0.0) -> bool:
        return time.perf_counter() > deadline - reserve() - extra_s

    stopped: list[bool] = []

    def stop_exporting() -> bool:
        if models and out_of_time(per_model_s):
            stopped.append(True)
        return bool(stopped)

    complete = True
    with Measurer(backend.name, threads, runtime_options, fmt, wdir / "converted") as measurer:
        overhead_graph = call_overhead_graph(str(wdir))

        def measure_kernels(jobs: list[dict[str, Any]], stop: Callable[[], bool]) -> Iterator[int]:
            """Measure the jobs batch by batch, each batch stored as it returns; how many are done."""
            done = 0
            for part, result in measurer.run(jobs, window, overhead_graph, stop=stop):
                new = [
                    _kernel_row(kernels[j["signature"]], r, result["overhead_ns"])
                    for j, r in zip(part, result["results"])
                ]
                _append(table_path, new)
                for row in new:
                    add_pass(rows, row)
                done += len(part)
                yield done

        # export one model, measure its new kernels (biggest first), then the next: whatever the budget,
        # what was measured is a predictor; the first model's biggest kernels are always measured
        for m in exported_zoo(zoo, resolutions, progress, failed, stop=stop_exporting):
            models.append(m)
            jobs, seen = kernel_jobs([m], wdir, set(rows) | set(kernels))
            kernels.update({sig: k for sig, k in seen.items() if sig not in kernels})
            progress(f"{m.key}: measuring {len(jobs)} kernels ({len(seen) - len(jobs)} already measured)")
            done = 0
            for done in measure_kernels(jobs, stop=lambda: bool(rows) and out_of_time()):
                progress(f"kernels {done}/{len(jobs)} of {m.key} ({time.perf_counter() - t0:.0f} s)")
            if done < len(jobs):
                complete = False
                break
        complete = complete and not stopped
        # the second pass (predict/passes.py) while the budget lasts; a cut build resumes its first
        uses = Counter(k.signature for m in models for k in m.kernels)
        again = repeat_jobs(rows, kernels, uses, wdir) if complete else []
        if again:
            progress(f"measuring {len(again)} kernels again, apart in time (the most time in the zoo first)")
            for done in measure_kernels(again, stop=lambda: out_of_time(SLACK * budget_s)):
                progress(f"measured again: {done}/{len(again)} kernels ({time.perf_counter() - t0:.0f} s)")
        if not models:
            raise UsageError(
                "no zoo model could be exported: " + "; ".join(f"{f['model']}: {f['error']}" for f in failed[:3])
            )
        # whole models only where every kernel is in the table: they are what the correction is fitted on
        todo_models = [m for m in models if m.key not in model_rows and all(k.signature in rows for k in m.kernels)]
        complete = complete and len(todo_models) == sum(m.key not in model_rows for m in models)
        measured = measure_whole(measurer, todo_models, model_window, rounds, progress, deadline)
        for m in todo_models:
            if m.key not in measured:
                complete = False
                continue
            row = {"key": m.key, "model": m.name, "input_shape": m.input_shape, **measured[m.key]}
            _append(models_path, [row])
            model_rows[m.key] = row
            if "error" in row:
                failed.append({"model": m.key, "phase": "measure", "error": row["error"]})
    data = new_data(backend.name, device, ident)
    data["table"] = [r for r in rows.values() if "kernel_ns" in r]
    data["training_models"] = [
        {
            "model": m.name,
            "input_shape": m.input_shape,
            "measured_ns": model_rows[m.key]["median_ns"],
            "flops": m.flops,
            "kernel_list": [k.to_dict() for k in m.kernels],
        }
        for m in models
        if "median_ns" in model_rows.get(m.key, {})
    ]
    data["built"].update(
        {
            "seconds": round(time.perf_counter() - t0, 1),
            "zoo": [m.key for m in models],
            "zoo_names": sorted({m.name for m in models}),
            "resolutions": resolutions,
            "kernels": len(data["table"]),
            "kernel_errors": sum("error" in r for r in rows.values()),
            "failed": failed,
            "complete": complete,
            "window": {"kernel": window.__dict__, "model": model_window.__dict__},
            **kernel_method(fmt, data["table"]),
            "kernel_passes": pass_counts(data["table"]),
        }
    )
    predictor = fit(data)
    data["correction"]["unseen"] = unseen_model_cv(data)
    kept = covering_more(predictor)
    path = predictor.save(wdir / "predictor.json" if kept else None)
    return BuildReport(
        predictor,
        path,
        time.perf_counter() - t0,
        len(data["table"]),
        len(kernels),
        len(data["training_models"]),
        failed,
        complete,
        kept,
    )


def covering_more(new: Predictor) -> Predictor | None:
    """The installed predictor for the same runtime, CPU and threads when it covers more (more measured
    kernels, or as many and more measured zoo models) than `new`: a shorter rebuild must not replace it."""
    path = predictors_dir() / f"{new.id}.json"
    if not path.is_file():
        return None
    try:
        old = Predictor.read(path)
    except UsageError:
        return None  # an unreadable file covers nothing
    if old.data["identity"] != new.data["identity"]:
        return None  # built for another runtime version or thread count: the new one is the one that fits

    def coverage(p: Predictor) -> tuple[int, int]:
        return len(p.data["table"]), len(p.data.get("training_models") or [])

    return old if coverage(old) > coverage(new) else None


def kernel_method(artifact_format: str, table: list[dict[str, Any]]) -> dict[str, str]:
    """How the table's kernel times were read, for the predictor's metadata."""
    profiled = bool(table) and all("layers" in r for r in table)
    out = {
        "kernel_time": "the runtime's per-layer profile, less its boundary layers"
        if profiled
        else "single-kernel graph latency less the measured empty-graph call (no per-layer profile)",
        "graphs": "onnx",
    }
    if artifact_format != "onnx":
        out["graphs"] = f"onnx converted to {artifact_format} ({CONVERTERS[artifact_format]})"
    return out


def _kernel_row(k: Kernel, r: dict[str, Any], overhead_ns: float) -> dict[str, Any]:
    row = {
        "signature": k.signature,
        "type": k.type,
        "features": k.features(),
        "config": k.describe(),
        "ops": k.ops,
        "overhead_ns": overhead_ns,
        **r,
    }
    if "kernel_ns" not in r and "median_ns" in r:  # no profile: latency less the call
        row["kernel_ns"] = max(r["median_ns"] - overhead_ns, 0.0)
    return row


def measure_whole(
    measurer: Measurer,
    models: list[ZooModel],
    window: Window,
    rounds: int,
    progress: Progress,
    deadline: float = float("inf"),
) -> dict[str, dict[str, Any]]:
    """Each model's latency: `rounds` interleaved rounds over all the models (drift on a shared
    machine then hits every model alike), the median of the rounds' medians. A model whose rounds
    did not all finish before `deadline` is left out."""
    per: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    if time.perf_counter() > deadline:
        return {}  # no time left: converting them (a backend that reads no ONNX) would only overrun
    jobs = measurer.converted([{"path": m.onnx_path, "inputs": _inputs_of(m.onnx_path, m.input_shape)} for m in models])
    for rnd in range(rounds):
        for m, job in zip(models, jobs):
            if m.key in errors:
                continue
            if time.perf_counter() > deadline:
                return {}  # a round cut short would leave medians of unequal rounds
            r = next(measurer.run([job], window, batch=1))[1]["results"][0]
            if "median_ns" not in r:
                errors[m.key] = r.get("error", "?")
                continue
            per.setdefault(m.key, []).append(r["median_ns"])
        progress(f"whole models: round {rnd + 1}/{rounds} done")
    import numpy as np

    out: dict[str, dict[str, Any]] = {key: {"error": err} for key, err in errors.items()}
    for key, values in per.items():
        out[key] = {"median_ns": float(np.median(values)), "rounds_ns": values}
    return out


def validate(
    predictor: Predictor,
    names: list[str],
    progress: Progress,
    window: Window = MODEL_WINDOW,
    input_size: int | None = None,
    rounds: int = 3,
) -> dict[str, Any]:
    """Measure held-out models (refusing any the build used) in interleaved rounds, predict them,
    store the statistics, with how well the measurement repeats itself (the noise floor)."""
    from effbench.predict.stats import accuracy, remeasure_agreement

    backend = check_target(predictor.backend, predictor.device)
    used = set(predictor.data.get("built", {}).get("zoo_names") or [])
    from effbench.models.registry import resolve

    held_out = []
    for name in names:
        spec_id = resolve(name).id
        if spec_id in used:
            raise UsageError(f"{name} was used to build predictor {predictor.id}: validation needs held-out models")
        held_out.append(name)
    results, failed = [], []
    models = []
    for i, name in enumerate(held_out, 1):
        try:
            models.append(zoo_model(name, input_size))
        except Exception as e:
            failed.append({"model": name, "phase": "export", "error": _first(e)})
            progress(f"[{i}/{len(held_out)}] {name}: skipped ({_first(e)})")
    runtime_options = {"model_cache": False} if backend.name == "openvino" else {}
    threads = predictor.data["identity"].get("threads")
    converted = work_dir(predictor.id, predictor.data["identity"]) / "converted"
    with Measurer(backend.name, threads, runtime_options, graph_format(backend.artifact_format), converted) as measurer:
        measured = measure_whole(measurer, models, window, rounds, progress)
    for m in models:
        r = measured.get(m.key, {"error": "not measured"})
        if "median_ns" not in r:
            failed.append({"model": m.key, "phase": "measure", "error": r["error"]})
            continue
        pred = predictor.predict(m.kernels)
        refusal = pred.refusal(m.key, predictor.id)
        if refusal:
            failed.append({"model": m.key, "phase": "predict", "error": refusal})
            continue
        rounds_ms = [v / 1e6 for v in r["rounds_ns"]]
        results.append(
            {
                "model": m.name,
                "input_shape": m.input_shape,
                "predicted_ms": pred.ms,
                "measured_ms": r["median_ns"] / 1e6,
                "rounds_ms": rounds_ms,
                "flops": m.flops,
                "unknown_kernels": pred.unknown.get("kernels", 0),
            }
        )
        progress(
            f"{m.key}: predicted {pred.ms:.3f} ms, measured {r['median_ns'] / 1e6:.3f} ms "
            f"({pred.ms / (r['median_ns'] / 1e6) - 1:+.1%}; rounds " + ", ".join(f"{v:.3f}" for v in rounds_ms) + ")"
        )
    stats = accuracy(
        [r["predicted_ms"] for r in results], [r["measured_ms"] for r in results], [r["flops"] for r in results]
    )
    stats["remeasure"] = remeasure_agreement([r["rounds_ms"] for r in results])
    stats["results"] = results
    stats["failed"] = failed
    predictor.data["validation"] = stats
    predictor.save()
    return stats
