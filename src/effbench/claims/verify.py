"""Run the planned cells (each in its own worker, like any sweep), hand every result to the caller's
sink as it finishes, with `extra.claim` saying which claim, run, side and round it belongs to, and
judge each plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from effbench.claims.plan import Plan
from effbench.claims.verdict import ClaimVerdict, judge
from effbench.harness.result import Result


@dataclass
class Outcome:
    plan: Plan
    run: str
    records: dict[str, list[Result]] = field(default_factory=lambda: {"A": [], "B": []})
    verdict: ClaimVerdict | None = None

    def notes(self) -> list[str]:
        """The plan's notes, with this machine's processor or GPU named from the records."""
        env = next((r.env for r in self.records["A"] + self.records["B"] if r.env), {})
        here = env.get("cpu_model") if self.plan.device_kind == "cpu" else None
        gpu = env.get("gpu")
        if self.plan.device_kind == "gpu" and gpu:
            first = gpu[0] if isinstance(gpu, list) else gpu
            here = first.get("name") if isinstance(first, dict) else str(first)
        return [
            f"{n} ({here})" if here and n.startswith("published on ") and "measured here on" in n else n
            for n in self.plan.notes
        ]

    def to_dict(self) -> dict[str, Any]:
        p, c = self.plan, self.plan.entry.claim
        return {
            "claim": c.name,
            "run": self.run,
            "paper": p.entry.paper.title,
            "statement": c.statement,
            "backend": p.backend,
            "device": p.device,
            "batch": p.batch,
            "threads": p.threads,
            "precision": p.precision,
            "kind": c.kind,
            "metric": c.metric,
            "tolerance": p.tolerance,
            "published_ratio_source": c.published_ratio_source,
            "notes": self.notes(),
            "record_ids": {s: [r.id for r in rs] for s, rs in self.records.items()},
            **(self.verdict.to_dict() if self.verdict else {}),
        }


def claim_meta(plan: Plan, run: str, side: str, round_: int) -> dict[str, Any]:
    """What a stored record carries about its claim: enough for a report to judge it without the card."""
    c = plan.entry.claim
    return {
        "name": c.name,
        "run": run,
        "side": side,
        "round": round_,
        "paper": plan.entry.paper.title,
        "statement": c.statement,
        "kind": c.kind,
        "metric": c.metric,
        "published_ratio": c.published_ratio,
        "tolerance": plan.tolerance,
        "models": [m.display for m in c.models],
        "notes": plan.notes,
    }


def verify(plans: list[Plan], sink: Callable[[Result], None], isolate: bool = True) -> list[Outcome]:
    """Run every plan's cells in order and judge each plan. Each result goes to `sink` (the command's
    ResultSink: stored, or spooled, with Ctrl-C held while it is written) as it finishes, so a Ctrl-C
    keeps those already finished."""
    from effbench.harness.scheduler import run_cells

    run = uuid.uuid4().hex[:12]
    outcomes = [Outcome(p, run) for p in plans]
    # A result finds its plan and side by tag (the claim) and configuration hash (backend, device, model).
    where: dict[tuple[str | None, str | None], tuple[Outcome, str]] = {
        (cfg.tag, cfg.config_hash()): (o, side) for o in outcomes for side, cfg in o.plan.cells
    }

    def stored(result: Result) -> None:
        found = where.get((result.tag, result.config_hash))
        if found is None:  # pragma: no cover - every result comes from a planned cell
            return
        outcome, side = found
        result = result.with_extra(claim=claim_meta(outcome.plan, run, side, len(outcome.records[side])))
        sink(result)
        outcome.records[side].append(result)

    run_cells([cfg for o in outcomes for _, cfg in o.plan.cells], isolate=isolate, on_result=stored)
    for o in outcomes:
        o.verdict = judge(
            o.plan.entry.claim.kind,
            o.plan.entry.claim.published_ratio,
            o.plan.tolerance,
            o.records["A"],
            o.records["B"],
        )
    return outcomes
