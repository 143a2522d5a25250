"""The cells a claim needs on one runtime and device, with the published settings applied where they
can be and a note for each one that could not ("published on a V100, measured here on cpu").

Cells alternate A B, B A, A B ... (one pair per round, the order flipped each round), so both models
see the same drift of a busy machine; each cell is tagged `claim:<name>`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from effbench.claims.library import Entry, unbuildable_models
from effbench.errors import UsageError
from effbench.harness.config import RunConfig

DEFAULT_BACKENDS = ("onnxruntime", "openvino", "torch")
# a claim measured on a phone or board also gets a reading on the runtimes those ship (XNNPACK on the CPU)
MOBILE_BACKENDS = ("litert", "executorch")
CPU_BATCH_CAP = 16  # a paper's GPU batch (2048) on a CPU would take minutes per round
MIN_POOLED = 60  # samples a side; the block bootstrap needs 50 (10 blocks of 5)
TAG_PREFIX = "claim:"


def claim_tag(name: str) -> str:
    return f"{TAG_PREFIX}{name}"


@dataclass
class Timing:
    rounds: int = 3
    warmup_s: float = 0.5
    warmup_iters: int = 5
    duration_s: float = 2.0
    min_iters: int = 20
    timeout_s: float = 900.0


@dataclass
class Overrides:
    batch: int | None = None
    threads: int | None = None
    tolerance: float | None = None
    options: dict[str, str] = field(default_factory=dict)
    parity: bool = True


@dataclass
class Plan:
    entry: Entry
    backend: str
    device: str
    device_kind: str
    batch: int
    threads: int | None
    precision: str
    tolerance: float
    notes: list[str]
    cells: list[tuple[str, RunConfig]]  # (side "A" | "B", config), in run order

    @property
    def name(self) -> str:
        return self.entry.name


def _target(device: str) -> Any:
    from effbench.devices.target import resolve_target

    return resolve_target(device)  # unknown names: one-line UsageError with suggestions


def device_kind(device: str) -> str:
    t = _target(device)
    if t.execution == "remote":
        return t.spec.kind if t.spec else "cpu"
    return "gpu" if t.execution.startswith("cuda") else "cpu"


def _usable(backend: str, device: str) -> str | None:
    """Why `backend` cannot run on `device` here (None: it can; remote devices are checked later)."""
    from effbench.backends.registry import get_backend

    t = _target(device)
    if t.execution == "remote":
        return None
    return get_backend(backend).unavailable_reason(t.execution)


def canonical_backend(name: str) -> str:
    from effbench.backends.registry import get_backend

    return get_backend(name).name


def default_devices(entry: Entry) -> list[str]:
    """The published kind of device where this machine has one (a GPU claim on cuda:0), else cpu."""
    s = entry.claim.settings
    if s.device_kind == "gpu":
        candidates = [s.backend] if s.backend else list(DEFAULT_BACKENDS)
        if any(_usable(canonical_backend(b), "cuda:0") is None for b in candidates):
            return ["cuda:0"]
    return ["cpu"]


def default_backends(entry: Entry, device: str) -> tuple[list[str], str | None]:
    """The published runtime where it runs here, else ONNX Runtime, OpenVINO and PyTorch (those that
    run here); and a note saying why the published one was not used."""
    s = entry.claim.settings
    if s.backend:
        published = canonical_backend(s.backend)
        why = _usable(published, device)
        if why is None:
            return [published], None
        note = f"published runtime {s.runtime} ({published}) is not usable here: {why}"
    else:
        note = f"published runtime ({s.runtime}) has no effbench backend"
    candidates = DEFAULT_BACKENDS + (MOBILE_BACKENDS if s.device_kind == "mobile" else ())
    usable = [b for b in candidates if _usable(b, device) is None]
    if not usable:
        raise UsageError(
            f"no backend runs on {device} here ({', '.join(DEFAULT_BACKENDS)} are not usable); "
            "pass --backend NAME (`bench backends` lists them)"
        )
    return usable, note


def refuse_unbuildable(entry: Entry) -> None:
    missing = unbuildable_models(entry.claim)
    if missing:
        what = "; ".join(f"{model}: {why}" for model, why in missing)
        raise UsageError(f"claim '{entry.name}' cannot be verified here: effbench cannot build {what}")


def _batch(entry: Entry, kind: str, override: int | None) -> tuple[int, str | None]:
    s = entry.claim.settings
    metric = "throughput" if entry.claim.metric == "throughput" else "latency"
    if override is not None:
        return override, (
            None if override == s.batch else f"published batch {s.batch} {metric}, measured batch {override} (--batch)"
        )
    if kind == "cpu" and s.batch > CPU_BATCH_CAP:
        return CPU_BATCH_CAP, (
            f"published batch {s.batch} {metric} on {s.device}, measured batch {CPU_BATCH_CAP}: "
            f"batch {s.batch} on a CPU takes minutes per round (--batch N to choose)"
        )
    return s.batch, None


def _threads(entry: Entry, kind: str, override: int | None, remote: bool) -> tuple[int | None, str | None]:
    s = entry.claim.settings
    if override is not None:
        return override, (
            None
            if override == s.threads
            else f"published threads {s.threads or 'not stated'}, measured with {override} (--threads)"
        )
    if kind != "cpu" or s.threads is None:
        return None, None
    cores = None if remote else os.cpu_count()
    if cores and s.threads > cores:
        return cores, f"published {s.threads} threads, this machine has {cores} cores: measured with {cores}"
    return s.threads, None


def _precision(entry: Entry, backend: str, device: str, kind: str) -> tuple[str, str | None]:
    from effbench.backends.registry import get_backend

    s = entry.claim.settings
    if s.precision == "fp32":
        return "fp32", None
    if kind != s.device_kind:
        return "fp32", f"published {s.precision} on a {s.device_kind}, measured fp32 on {device}"
    execution = _target(device).execution
    if execution == "remote":  # the agent's device: what its catalog entry says it is
        execution = "cuda:0" if kind == "gpu" else "cpu"
    why = get_backend(backend).check_precision(s.precision, execution)
    if why:
        return "fp32", f"published {s.precision}, measured fp32: {why}"
    return s.precision, None


def plan_claim(
    entry: Entry, backend: str, device: str, timing: Timing, over: Overrides, extra_notes: list[str] | None = None
) -> Plan:
    """The interleaved cells of `entry` on one backend and device; bad values are one-line UsageErrors."""
    claim, s = entry.claim, entry.claim.settings
    target = _target(device)
    remote = target.execution == "remote"
    kind = device_kind(device)
    notes = list(extra_notes or [])
    if kind != s.device_kind:
        notes.append(f"published on {s.device} ({s.device_kind}), measured here on {device} ({kind})")
    else:
        notes.append(f"published on {s.device}, measured here on {device}")
    if s.backend is None or canonical_backend(s.backend) != backend:
        notes.append(f"published on {s.runtime}, measured with {backend}")
    batch, note = _batch(entry, kind, over.batch)
    notes += [note] if note else []
    threads, note = _threads(entry, kind, over.threads, remote)
    notes += [note] if note else []
    precision, note = _precision(entry, backend, device, kind)
    notes += [note] if note else []
    if claim.metric == "throughput":
        notes.append(f"throughput = batch {batch} / latency of one synchronous batched run")
    if s.what != "inference":
        notes.append(f"published speed is a {s.what}; effbench times inference (forward pass only): a proxy")

    min_iters = max(timing.min_iters, math.ceil(MIN_POOLED / timing.rounds))
    sides = {"A": claim.models[0], "B": claim.models[1]}
    cells: list[tuple[str, RunConfig]] = []
    for r in range(timing.rounds):
        for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
            m = sides[side]
            try:
                cfg = RunConfig(
                    model=m.name,
                    backend=backend,
                    device=device,
                    batch_size=batch,
                    precision=precision,
                    scenario="latency",
                    threads=threads,
                    warmup_s=timing.warmup_s,
                    warmup_iters=timing.warmup_iters,
                    duration_s=timing.duration_s,
                    min_iters=min_iters,
                    input_size=m.resolution or s.resolution,
                    parity=over.parity,
                    options={**over.options, **m.options},
                    tag=claim_tag(claim.name),
                    timeout_s=timing.timeout_s,
                )
            except ValidationError as e:
                err = e.errors()[0]
                field_name = str(err["loc"][0]) if err["loc"] else "?"
                raise UsageError(
                    f"claim '{claim.name}': invalid {field_name}: {err['msg'].lower()} (got {err.get('input')!r})"
                ) from None
            cells.append((side, cfg))
    tol = claim.tolerance if over.tolerance is None else over.tolerance
    return Plan(entry, backend, device, kind, batch, threads, precision, tol, notes, cells)


def plan_claims(
    entry: Entry, backends: list[str] | None, devices: list[str] | None, timing: Timing, over: Overrides
) -> list[Plan]:
    """One plan per (device, backend); explicit backends must run on the device, defaults are chosen."""
    refuse_unbuildable(entry)
    plans: list[Plan] = []
    for device in devices or default_devices(entry):
        notes: list[str] = []
        if backends:
            names = []
            for b in backends:
                name = canonical_backend(b)
                why = _usable(name, device)
                if why:
                    raise UsageError(f"backend '{name}' is not usable on {device} here: {why}")
                if name not in names:
                    names.append(name)
        else:
            names, note = default_backends(entry, device)
            notes += [note] if note else []
        plans.extend(plan_claim(entry, b, device, timing, over, notes) for b in names)
    return plans
