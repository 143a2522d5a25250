"""Cells: what the gate compares. One cell is one configuration's outcome, built from one or more
results (several rounds of the same configuration are pooled), and is also exactly what a
baseline file stores per configuration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from effbench.core.stats import summarize
from effbench.harness.result import STATUSES, Result, as_result, newest_per_cell

KEY_FIELDS = ("model", "backend", "device", "batch_size", "precision", "scenario")
FAILED_STATUSES = ("failed", "crashed", "timeout")
T = TypeVar("T")


def scenario_of(r: Result) -> str:
    """A profiled cell (its timing slowed by the profiler) is compared only with profiled cells."""
    return "profile" if r.profiled else r.scenario


def label_of(r: Result) -> str:
    return "/".join([r.model, r.backend, r.device, f"bs{r.batch_size}", r.precision, scenario_of(r)])


def key_of(r: Result) -> str:
    """Cells match on the configuration hash; results without one fall back to their label."""
    return r.config_hash or label_of(r)


@dataclass
class Cell:
    config_hash: str | None
    label: str
    model: str
    backend: str
    device: str
    batch_size: int
    precision: str
    scenario: str
    status: str = "ok"
    error: str | None = None
    samples_ms: list[float] = field(default_factory=list)
    summary: dict[str, Any] | None = None  # effbench.core.stats.summarize of samples_ms
    parity: dict[str, Any] | None = None
    throughput_per_s: float | None = None
    memory: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    record_ids: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # the record's measured `accuracy` block

    @property
    def key(self) -> str:
        return self.config_hash or self.label

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        key = {"config_hash": data.pop("config_hash"), **{f: data.pop(f) for f in KEY_FIELDS}}
        return {"key": key, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        """Inverse of to_dict; the input is assumed valid (see baseline.validate_baseline)."""
        key = data["key"]
        known = set(cls.__dataclass_fields__) - {"config_hash", *KEY_FIELDS}
        rest = {k: v for k, v in data.items() if k in known}  # ignore fields a newer effbench added
        return cls(config_hash=key.get("config_hash"), **{f: key[f] for f in KEY_FIELDS}, **rest)


def cell_from_records(records: Sequence[Result]) -> Cell:
    """Pool results of one configuration (e.g. interleaved A/B rounds) into one cell.

    Samples are concatenated in the given order; any failed round makes the cell failed and any
    parity failure makes it a parity failure, since a flaky failure is still a failure.
    """
    first = records[0]
    bad = next((r for r in records if not r.ok), None)
    samples = [float(s) for r in records for s in r.samples_ms]
    parities = [r.parity.to_dict() for r in records if r.parity]
    memories = [r.memory.to_dict() for r in records if r.memory]
    accuracies = [r.accuracy for r in records if isinstance(r.accuracy, dict)]
    throughputs = [r.throughput_per_s for r in records if r.throughput_per_s is not None]
    return Cell(
        config_hash=first.config_hash,
        label=label_of(first),
        model=first.model,
        backend=first.backend,
        device=first.device,
        batch_size=first.batch_size,
        precision=first.precision,
        scenario=scenario_of(first),
        status=bad.status if bad else "ok",
        error=bad.error if bad else None,
        samples_ms=samples,
        summary=summarize(samples).to_dict() if samples else None,
        parity=next((p for p in parities if p.get("ok") is False), parities[0] if parities else None),
        throughput_per_s=sum(throughputs) / len(throughputs) if throughputs else None,
        memory=max(memories, key=lambda m: m.get("peak_rss_mb") or 0) if memories else None,
        energy=_pool_energy([r.energy.to_dict() if r.energy else None for r in records]),
        env=first.env,
        record_ids=[r.id for r in records],
        accuracy=accuracies[-1] if accuracies else None,
    )


def _pool_energy(energies: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    usable = [e for e in energies if e and e.get("available", True) and e.get("samples_j_per_image")]
    if not usable:
        return next((e for e in energies if e), None)
    pooled = dict(usable[0])
    pooled["samples_j_per_image"] = [float(s) for e in usable for s in e["samples_j_per_image"]]
    return pooled


def group(records: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    """Results (or cells) by key, in order of first appearance, each list in the given order."""
    groups: dict[str, list[T]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return groups


def pooled_cells(records: Iterable[Result | Mapping[str, Any]], key: Callable[[Result], str] = key_of) -> list[Cell]:
    """One cell per configuration, its results (or JSON records: a results file) pooled."""
    return [cell_from_records(rs) for rs in group(map(as_result, records), key).values()]


def newest_cells(records: Iterable[Result | Mapping[str, Any]]) -> list[Cell]:
    """One cell per configuration from its newest result (stores keep history)."""
    return [cell_from_records([r]) for r in newest_per_cell(map(as_result, records))]


# --- validation of untrusted JSON (baseline files, results files) --------------------------------


class Invalid(ValueError):
    """`str(exc)` names the offending field path and what it should be."""


def read_json_file(path: Path, what: str) -> Any:
    """The parsed JSON of `path`; unreadable or malformed is a one-line UsageError naming `what`."""
    import json

    from effbench.errors import UsageError

    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} '{path}': {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} '{path}' is not valid JSON: {exc}") from exc


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise Invalid(f"{where} {what}")


def check_numbers(value: Any, where: str) -> None:
    check(
        isinstance(value, list) and all(is_number(v) and v >= 0 for v in value),
        where,
        "must be a list of non-negative numbers",
    )


def check_optional_dict(value: Any, where: str) -> None:
    check(value is None or isinstance(value, dict), where, "must be an object or null")


def check_outcome(obj: dict[str, Any], where: str) -> None:
    """Fields records and baseline cells share."""
    check(obj.get("status", "ok") in STATUSES, f"{where}.status", f"must be one of {', '.join(STATUSES)}")
    check_numbers(obj.get("samples_ms") or [], f"{where}.samples_ms")  # null: a cell that did not run
    for name in ("parity", "memory", "energy", "accuracy"):
        check_optional_dict(obj.get(name), f"{where}.{name}")
    energy = obj.get("energy") or {}
    if "samples_j_per_image" in energy:
        check_numbers(energy["samples_j_per_image"], f"{where}.energy.samples_j_per_image")
    check(obj.get("env") is None or isinstance(obj.get("env"), dict), f"{where}.env", "must be an object")


def validate_records(data: Any) -> list[dict[str, Any]]:
    """A results file (`bench run --out`): a JSON list of record objects."""
    check(isinstance(data, list), "the top level", "must be a list of result records")
    for i, r in enumerate(data):
        check(isinstance(r, dict), f"[{i}]", "must be an object")
        for f in ("model", "backend"):
            check(isinstance(r.get(f), str), f"[{i}].{f}", "must be a string")
        check_outcome(r, f"[{i}]")
    return data
