"""Stored records -> tidy rows the report views draw from.

Everything here reads records; nothing re-runs or re-analyses a model. A record may lack any
key (older records, failed cells, other backends): every accessor returns None rather than
raising, and the views say what is missing and how to get it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from effbench.errors import EffbenchError

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


def _card(model: str):
    try:
        from effbench.models.cards import CARDS
    except ImportError:  # pragma: no cover - cards always ship with the package
        return None
    name = model[len("timm:") :] if model.startswith("timm:") else model
    card = CARDS.get(name)
    if card is None:  # a timm name with a pretrained tag: efficientvit_m0.r224_in1k
        card = CARDS.get(name.split(".", 1)[0])
    return card


def accuracy_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The record's measured `accuracy` block (top-1 on the session that was timed), when it has a top-1."""
    acc = rec.get("accuracy")
    if acc is None and isinstance(rec.get("extra"), dict):  # a store that keeps unknown fields in extra
        acc = rec["extra"].get("accuracy")
    return acc if isinstance(acc, dict) and num(acc.get("top1")) is not None else None


def interval_of(value: Any) -> tuple[float, float] | None:
    """[low, high] of a stored interval, or None."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = num(value[0]), num(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def low_precision(rec: dict[str, Any]) -> str | None:
    """The integer precision a record ran at (int8, int4, ...), else None: a model card's fp32 top-1 says
    nothing about it."""
    for key in ("precision_ran", "precision"):
        value = text(rec.get(key)).lower()
        if value.startswith(("int", "uint")):
            return value
    return None


def top1_of(rec: dict[str, Any]) -> tuple[float | None, str | None]:
    """(top-1 %, where it comes from): a measured value in the record wins over the card; an integer-precision
    result without a measured top-1 has none (None, and why), never the fp32 card's number."""
    acc = accuracy_of(rec)
    if acc is not None:
        return num(acc["top1"]), "measured"
    extra = rec.get("extra") or {}
    measured = num(extra.get("measured_top1")) if isinstance(extra, dict) else None  # records before `accuracy`
    if measured is not None:
        return measured, "measured"
    card = _card(text(rec.get("model")))
    if card is not None and card.top1 is not None:
        low = low_precision(rec)
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


def _extra(rec: dict[str, Any], key: str) -> dict[str, Any] | None:
    extra = rec.get("extra")
    value = extra.get(key) if isinstance(extra, dict) else None
    return value if isinstance(value, dict) else None


def analysis_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """extra.analysis (roofline of the model on the device), when the run had device peaks."""
    return _extra(rec, "analysis")


def profile_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """extra.profile (per-layer measured times) of a `bench profile` record."""
    return _extra(rec, "profile")


@dataclass
class Row:
    """One stored result, flattened for the views (the record itself stays in `rec`)."""

    rec: dict[str, Any]
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
    def cell(self) -> tuple:
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
        raw = self.rec.get("samples_ms") or []
        if not isinstance(raw, list):
            return []
        out = []
        for v in raw:
            f = num(v)
            if f is not None:
                out.append(f)
        return out

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


def to_row(rec: dict[str, Any]) -> Row:
    lat = as_dict(rec.get("latency_ms"))
    energy = as_dict(rec.get("energy"))
    model = text(rec.get("model")) or "?"
    top1, top1_source = top1_of(rec)
    median = num(lat.get("median"))
    ideal = num(rec.get("ideal_ms"))
    eff = num(rec.get("efficiency"))
    if eff is None and ideal is not None and median:
        eff = ideal / median
    batch = rec.get("batch_size")
    try:
        batch = int(batch) if batch is not None else None
    except (TypeError, ValueError):
        batch = None
    n = num(lat.get("n"))
    warnings = as_list(rec.get("warnings"))
    parity = rec.get("parity") if isinstance(rec.get("parity"), dict) else None
    return Row(
        rec=rec,
        id=text(rec.get("id")),
        created_at=text(rec.get("created_at")),
        model=model,
        backend=text(rec.get("backend")) or "?",
        device=text(rec.get("device")) or "?",
        scenario="profile" if rec.get("profiled") else (text(rec.get("scenario")) or "latency"),
        batch=batch,
        precision=text(rec.get("precision")) or "fp32",
        precision_ran=text(rec.get("precision_ran") or rec.get("precision")),
        status=text(rec.get("status")) or "?",
        error=text(rec.get("error")),
        tag=text(rec.get("tag")),
        median=median,
        ci_low=num(lat.get("ci95_low")),
        ci_high=num(lat.get("ci95_high")),
        p99=num(lat.get("p99")),
        cv=num(lat.get("cv")),
        n=int(n) if n is not None else None,
        throughput=num(rec.get("throughput_per_s")),
        energy_j=num(energy.get("joules_per_image")) if energy.get("available", True) is not False else None,
        energy_reason=text(energy.get("reason")),
        ideal_ms=ideal,
        roofline_ms=num(rec.get("roofline_ms")),
        efficiency=eff,
        macs=num(rec.get("macs")),
        params=num(rec.get("params")),
        top1=top1,
        top1_source=top1_source,
        family=family_of(model),
        parity=parity,
        warnings=[text(w) for w in warnings],
        top1_ci=interval_of((accuracy_of(rec) or {}).get("top1_ci")),
    )


def to_rows(records: Iterable[dict[str, Any]]) -> list[Row]:
    return [to_row(r) for r in records if isinstance(r, dict)]


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


def load_records(query: Query) -> list[dict[str, Any]]:
    """Records matching the query, newest first; a clear EffbenchError (exit 1) when there are none."""
    from effbench.harness.store import Store, parse_since

    since = parse_since(query.since)
    store = Store(query.db, must_exist=True)
    one = lambda v: None if not v else (v[0] if len(v) == 1 else list(v))
    records = store.records(
        model=one(query.models),
        backend=one(_canonical_backends(query.backends)),
        device=one(query.devices),
        tag=one(query.tags),
        since=since,
    )
    if records:
        return records
    filters = query.describe()
    if not filters:
        raise EffbenchError(f"no stored results in {store.display_url}: run `bench run ...` or `bench sweep ...` first")
    total = len(store.records())
    raise EffbenchError(
        f"no stored results match {filters} ({total} result(s) in {store.display_url}; change or drop the filters)"
    )
