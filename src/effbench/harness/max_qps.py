"""The highest server QPS whose LoadGen run is VALID and whose p99 meets a bound: a bracketing
search (double or halve until one rate passes and one fails, then bisect geometrically) with a
bounded number of LoadGen Server runs. Each probe is one real cell; the curve (QPS against p99)
goes into the record of the best passing probe (`extra.max_qps`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable


@dataclass
class Probe:
    """One LoadGen Server run at `qps`."""

    qps: float
    passed: bool
    valid: bool
    p99_ms: float | None
    early_stopping_ms: float | None
    completed_qps: float | None
    reason: str  # why it failed ("" when it passed)
    log_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Search:
    bound_ms: float
    probes: list[Probe] = field(default_factory=list)
    stopped: str = ""

    @property
    def best(self) -> Probe | None:
        passing = [p for p in self.probes if p.passed]
        return max(passing, key=lambda p: p.qps) if passing else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "bound_ms": self.bound_ms,
            "percentile": 99,
            "max_qps": best.qps if best else None,
            "stopped": self.stopped,
            "curve": [p.to_dict() for p in sorted(self.probes, key=lambda p: p.qps)],
            "order": [p.qps for p in self.probes],
        }


def probe_of(record: dict[str, Any], qps: float, bound_ms: float) -> Probe:
    """A probe from a server cell's record: passed when LoadGen says VALID and its p99 is within the bound."""
    if record.get("status") != "ok":
        return Probe(qps, False, False, None, None, None, f"{record.get('status')}: {record.get('error')}")
    s = (record.get("extra") or {}).get("scenario") or {}
    lg = s.get("loadgen") or {}
    p99 = (lg.get("percentiles_ms") or {}).get("p99")
    valid = bool(lg.get("valid"))
    reasons = []
    if not valid:
        reasons.append(
            "INVALID" + (f" ({lg.get('result_invalid_reason', '').strip()})" if lg.get("result_invalid_reason") else "")
        )
    if p99 is None or p99 > bound_ms:
        reasons.append(f"p99 {p99:.3g} ms > {bound_ms:g} ms" if p99 is not None else "no p99")
    completed = lg.get("result_completed_samples_per_sec")
    return Probe(
        qps,
        not reasons,
        valid,
        p99,
        lg.get("early_stopping_estimate_ms"),
        completed,
        "; ".join(reasons),
        s.get("log_dir"),
    )


def search(
    run: Callable[[float | None], tuple[float, Probe]],
    bound_ms: float,
    start_qps: float | None = None,
    max_probes: int = 8,
    tolerance: float = 0.1,
    on_probe: Callable[[int, Probe], None] | None = None,
) -> Search:
    """`run(qps)` runs one probe (qps None: the scenario's own default rate) and returns the rate it
    offered with its probe. Doubles after a pass and halves after a fail until the highest pass and
    the lowest fail bracket the answer, then bisects (geometric mean) until they are within
    `tolerance` of each other or `max_probes` runs were made."""
    out = Search(bound_ms)
    lo: float | None = None  # highest passing rate
    hi: float | None = None  # lowest failing rate
    qps = start_qps
    for i in range(max_probes):
        offered, p = run(qps)
        out.probes.append(p)
        if on_probe:
            on_probe(i, p)
        if p.passed:
            lo = offered if lo is None else max(lo, offered)
        else:
            hi = offered if hi is None else min(hi, offered)
        if lo is not None and hi is not None and hi <= lo * (1 + tolerance):
            out.stopped = f"bracketed within {tolerance:.0%}"
            return out
        if lo is None:
            qps = offered / 2
        elif hi is None:
            qps = offered * 2
        else:
            qps = math.sqrt(lo * hi)
    out.stopped = f"{max_probes} probes (the most allowed)"
    return out
