"""Stored results -> tidy rows the report views draw from.

Everything here reads typed results (harness.result.Result); nothing re-runs or re-analyses a
model. A result's free-form blocks (extra, accuracy, config, env, runtime) may lack any key (older
records, failed cells, other backends): every accessor returns None rather than raising, and the
views say what is missing and how to get it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from effbench.errors import EffbenchError
from effbench.harness.result import Result

# A "cell" is one configuration: the same cell run twice gives two results (records).
CELL_KEYS = ("model", "backend", "device", "scenario", "batch_size", "precision")


def num(value: Any) -> float | None:
    """A finite float, or None (strings, NaN, inf, bools and missing values become None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def mapping(value: Any) -> dict[str, Any]:
    """A record's block when it is a dict, else an empty one (old, partial or foreign records)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    return "" if value is None else str(value)


def as_dict(value: Any) -> dict[str, Any]:
    """A record's sub-object, or {} where it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _card(model: str) -> Any:
    try:
        from effbench.models.cards import CARDS
    except ImportError:  # pragma: no cover - cards always ship with the package
        return None
    name = model[len("timm:") :] if model.startswith("timm:") else model
    card = CARDS.get(name)
    if card is None:  # a timm name with a pretrained tag: efficientvit_m0.r224_in1k
        card = CARDS.get(name.split(".", 1)[0])
    return card


def accuracy_of(result: Result) -> dict[str, Any] | None:
    """The result's measured `accuracy` block (top-1 on the session that was timed), when it has a top-1."""
    acc = result.accuracy if result.accuracy is not None else result.extra.get("accuracy")  # kept in extra
    return acc if isinstance(acc, dict) and num(acc.get("top1")) is not None else None


def interval_of(value: Any) -> tuple[float, float] | None:
    """[low, high] of a stored interval, or None."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = num(value[0]), num(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def low_precision(result: Result) -> str | None:
    """The integer precision a result ran at (int8, int4, ...), else None: a model card's fp32 top-1 says
    nothing about it."""
    for value in (result.precision_ran, result.precision):
        if text(value).lower().startswith(("int", "uint")):
            return text(value).lower()
    return None


def top1_of(result: Result) -> tuple[float | None, str | None]:
    """(top-1 %, where it comes from): a measured value in the result wins over the card; an integer-precision
    result without a measured top-1 has none (None, and why), never the fp32 card's number."""
    acc = accuracy_of(result)
    if acc is not None:
        return num(acc["top1"]), "measured"
    measured = num(result.extra.get("measured_top1"))  # records before `accuracy`
    if measured is not None:
        return measured, "measured"
    card = _card(result.model)
    if card is not None and card.top1 is not None:
        low = low_precision(result)
        if low:
            return None, f"not measured: the card's {card.top1:g} % is fp32, not {low} (add --eval DIR)"
        return float(card.top1), f"card: {card.source}"
    return None, None


def family_of(model: str) -> str:
    card = _card(model)
    if card is not None and card.family:
        return card.family
    name = model[len("timm:") :] if model.startswith("timm:") else model
    if name.lower().endswith(".onnx"):  # a file: its name
        name = Path(name).stem
    elif ":" in name:  # package.module:factory
        name = name.rsplit(":", 1)[1]
    return name.split("_", 1)[0] or name


def extra_of(result: Result, key: str) -> dict[str, Any] | None:
    """extra[key] when it is an object."""
    value = result.extra.get(key)
    return value if isinstance(value, dict) else None


def analysis_of(result: Result) -> dict[str, Any] | None:
    """extra.analysis (roofline of the model on the device), when the run had device peaks."""
    return extra_of(result, "analysis")


def profile_of(result: Result) -> dict[str, Any] | None:
    """extra.profile (per-layer measured times) of a `bench profile` result."""
    return extra_of(result, "profile")


@dataclass
class Row:
    """One stored result, flattened for the views (the typed result itself stays in `rec`)."""

    rec: Result
    id: str
    created_at: str
    model: str
    backend: str
    device: str
    scenario: str
    batch: int | None
    precision: str
    precision_ran: str
    status: str
    error: str
    tag: str
    median: float | None
    ci_low: float | None
    ci_high: float | None
    p99: float | None
    cv: float | None
    n: int | None
    throughput: float | None
    energy_j: float | None
    energy_reason: str
    ideal_ms: float | None
    roofline_ms: float | None
    efficiency: float | None
    macs: float | None
    params: float | None
    top1: float | None
    top1_source: str | None
    family: str
    parity: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)
    top1_ci: tuple[float, float] | None = None  # Wilson 95% interval of a measured top-1

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cell(self) -> tuple[Any, ...]:
        return (self.model, self.backend, self.device, self.scenario, self.batch, self.precision)

    @property
    def top1_measured(self) -> bool:
        return self.top1_source == "measured"

    @property
    def accuracy(self) -> dict[str, Any] | None:
        return accuracy_of(self.rec)

    @property
    def top1_text(self) -> str:
        """'97.2 [96.1–98.0]' measured (with its interval), '79.2 card' from a model card, '–' unknown."""
        if self.top1 is None:
            return "–"
        if not self.top1_measured:
            return f"{self.top1:.1f} card"
        return f"{self.top1:.1f}" + (f" [{self.top1_ci[0]:.1f}–{self.top1_ci[1]:.1f}]" if self.top1_ci else "")

    @property
    def is_latency_b1(self) -> bool:
        return self.scenario == "latency" and self.batch == 1

    @property
    def samples(self) -> list[float]:
        return [f for f in map(num, self.rec.samples_ms) if f is not None]

    @property
    def label(self) -> str:
        """Short unescaped label: model · backend · device (+ batch / precision when not b1 fp32)."""
        parts = [self.model, self.backend, self.device]
        if self.batch != 1:
            parts.append(f"b{self.batch}")
        if self.precision != "fp32":
            parts.append(self.precision)
        if self.scenario not in ("latency", ""):
            parts.append(self.scenario)
        return " · ".join(parts)

    @property
    def parity_text(self) -> str:
        par = self.parity
        if not par:
            return "not checked"
        if par.get("ok") is True:
            return "ok"
        if par.get("ok") is False:
            rel = num(par.get("max_rel_err"))
            return "FAIL" + (f" (max rel err {rel:.2g})" if rel is not None else "")
        return "?"


def to_row(result: Result) -> Row:
    r = result
    lat = r.latency
    energy = r.energy
    top1, top1_source = top1_of(r)
    median = num(lat.median) if lat else None
    ideal = num(r.ideal_ms)
    eff = num(r.efficiency)
    if eff is None and ideal is not None and median:
        eff = ideal / median
    return Row(
        rec=r,
        id=r.id,
        created_at=r.created_at,
        model=r.model or "?",
        backend=r.backend or "?",
        device=r.device or "?",
        scenario="profile" if r.profiled else (r.scenario or "latency"),
        batch=r.batch_size,
        precision=r.precision or "fp32",
        precision_ran=text(r.precision_ran or r.precision),
        status=r.status,
        error=text(r.error),
        tag=text(r.tag),
        median=median,
        ci_low=num(lat.ci95_low) if lat else None,
        ci_high=num(lat.ci95_high) if lat else None,
        p99=num(lat.p99) if lat else None,
        cv=num(lat.cv) if lat else None,
        n=lat.n if lat else None,
        throughput=num(r.throughput_per_s),
        energy_j=num(energy.joules_per_image) if energy and energy.available else None,
        energy_reason=text(energy.reason) if energy else "",
        ideal_ms=ideal,
        roofline_ms=num(r.roofline_ms),
        efficiency=eff,
        macs=num(r.macs),
        params=num(r.params),
        top1=top1,
        top1_source=top1_source,
        family=family_of(r.model),
        parity=r.parity.to_dict() if r.parity else None,
        warnings=[text(w) for w in r.warnings],
        top1_ci=interval_of((accuracy_of(r) or {}).get("top1_ci")),
    )


# JSON kinds of a record's blocks: a block of another kind (a partial or foreign record) is left out
_KINDS: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(
        ("latency_ms", "timing", "parity", "memory", "energy", "accuracy", "quantization", "stability"), dict
    ),
    **dict.fromkeys(("config", "runtime", "env", "extra"), dict),
    **dict.fromkeys(("warnings", "samples_ms", "cpus"), list),
    **dict.fromkeys(("batch_size", "iterations"), int),
    **dict.fromkeys(("model", "backend", "device", "scenario", "precision", "status", "id", "created_at"), str),
}


def readable(items: Iterable[Result | Mapping[str, Any]]) -> list[Result]:
    """Results, and JSON records read into results: a record missing its model or backend reads as '?', a
    block of the wrong kind is left out; anything else that cannot be read as a result is left out."""
    out = []
    for item in items:
        if isinstance(item, Result):
            out.append(item)
        elif isinstance(item, Mapping):
            kept = {k: v for k, v in item.items() if k not in _KINDS or isinstance(v, _KINDS[k])}
            try:
                out.append(Result.from_dict({"model": "?", "backend": "?", **kept}))
            except (TypeError, ValueError, AttributeError):
                continue
    return out


def to_rows(results: Iterable[Result | Mapping[str, Any]]) -> list[Row]:
    return [to_row(r) for r in readable(results)]


def latest_per_cell(rows: list[Row]) -> tuple[list[Row], int]:
    """One row per cell: the newest ok result, else the newest result (rows come newest first).

    Returns the rows in a stable order (model, backend, device, ...) and how many older results
    of the same cells were left out.
    """
    chosen: dict[tuple, Row] = {}
    for r in rows:
        have = chosen.get(r.cell)
        if have is None or (not have.ok and r.ok):
            chosen[r.cell] = r
    ordered = sorted(
        chosen.values(), key=lambda r: (r.model, r.device, r.backend, r.scenario, r.batch or 0, r.precision)
    )
    return ordered, len(rows) - len(ordered)


def _canonical_backends(names: list[str] | None) -> list[str] | None:
    if not names:
        return None
    out: list[str] = []
    for name in names:
        out.append(name)
        try:
            from effbench.backends.registry import get_backend

            canonical = get_backend(name).name
        except Exception:  # unknown or unimportable: results may still carry the name as typed
            continue
        if canonical not in out:
            out.append(canonical)
    return out


@dataclass
class Query:
    db: str | None = None
    models: list[str] | None = None
    backends: list[str] | None = None
    devices: list[str] | None = None
    tags: list[str] | None = None
    since: str | None = None

    def describe(self) -> str:
        parts = []
        for flag, vals in (
            ("--model", self.models),
            ("--backend", self.backends),
            ("--device", self.devices),
            ("--tag", self.tags),
        ):
            for v in vals or []:
                parts.append(f"{flag} {v}")
        if self.since:
            parts.append(f"--since {self.since}")
        return " ".join(parts)


def load_results(query: Query) -> list[Result]:
    """Results matching the query, newest first; a clear EffbenchError (exit 1) when there are none."""
    from effbench.harness.store import Store, parse_since

    since = parse_since(query.since)
    store = Store(query.db, must_exist=True)
    one = lambda v: None if not v else (v[0] if len(v) == 1 else list(v))
    results = store.results(
        model=one(query.models),
        backend=one(_canonical_backends(query.backends)),
        device=one(query.devices),
        tag=one(query.tags),
        since=since,
    )
    if results:
        return results
    filters = query.describe()
    if not filters:
        raise EffbenchError(f"no stored results in {store.display_url}: run `bench run ...` or `bench sweep ...` first")
    total = store.count()
    raise EffbenchError(
        f"no stored results match {filters} ({total} result(s) in {store.display_url}; change or drop the filters)"
    )
