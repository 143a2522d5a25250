"""The scenario contract. A scenario is a measuring strategy: given an open, bound session that has
had its first inference and warm-up, and the cell's `MeasureSettings`, it times inferences and
returns the samples plus its own summary. It reads everything it needs from the settings (the one
payload a worker, the ssh agent or a farm node receives) and nothing else.

A new scenario is one file in this package with a `Scenario` subclass decorated `@register`, and
one import line in `__init__.py` (so the ssh agent, which ships this package, carries it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import numpy as np

from ..probes import Telemetry
from ..session import CoreError, Session, ThroughputRun
from ..settings import MeasureSettings

Progress = Callable[[str, float, str], None]  # (phase, fraction done 0..1, detail)


@dataclass
class Context:
    """What a scenario may use besides the session and settings."""

    progress: Progress
    telemetry: Optional[Telemetry] = None  # None when telemetry is off


@dataclass
class Timed:
    """What a scenario returns: raw samples (ns) and its own summary (JSON-ready)."""

    samples_ns: np.ndarray
    seconds: float
    summary: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    target_ci: Optional[float] = None
    reached_ci: Optional[float] = None
    target_met: Optional[bool] = None
    throughput: Optional[ThroughputRun] = None


class Scenario:
    name = ""
    help = ""  # one line for --help and `bench --scenario`
    own_settings: Tuple[str, ...] = ()  # MeasureSettings fields only this scenario reads (others ignore them)

    def check(self, settings: MeasureSettings) -> Optional[str]:
        """Why these settings cannot run this scenario (found before any work), or None."""
        return None

    def certain_s(self, settings: MeasureSettings) -> float:
        """Seconds this scenario is sure to run beyond the usual (a cell's --timeout must cover them)."""
        return 0.0

    def unavailable(self, execution: str) -> Optional[str]:
        """Why this scenario cannot run where the cell executes ("cpu", "cuda:N", "remote"), found
        before any work; None where it can."""
        return None

    def measure(self, session: Session, settings: MeasureSettings, ctx: Context) -> Timed:
        raise NotImplementedError


SCENARIOS: Dict[str, Scenario] = {}


def own_settings() -> Tuple[str, ...]:
    """The settings some registered scenario reads and the others ignore."""
    return tuple(sorted({name for sc in SCENARIOS.values() for name in sc.own_settings}))


def register(cls: Type[Scenario]) -> Type[Scenario]:
    if not cls.name or cls.name in SCENARIOS:
        raise ValueError("scenario %r: empty or already registered" % cls.name)
    SCENARIOS[cls.name] = cls()
    return cls


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise CoreError(
            "bad_option", "unknown scenario %r (known: %s)" % (name, ", ".join(sorted(SCENARIOS)))
        ) from None
