"""Where a LoadGen scenario's log files are kept: a folder per run under the state directory,
named in the record (`extra.scenario.log_dir`)."""

from __future__ import annotations

import time
import uuid

from effbench.core.scenarios import get_scenario
from effbench.core.scenarios.loadgen import LoadGenScenario
from effbench.harness.config import RunConfig
from effbench.paths import state_dir


def new_dir(cfg: RunConfig) -> str | None:
    """A fresh folder path for this cell's LoadGen logs (created by the scenario); None for the
    scenarios that are not LoadGen's."""
    if not isinstance(get_scenario(cfg.scenario), LoadGenScenario):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return str(state_dir() / "loadgen" / f"{stamp}-{cfg.config_hash()[:8]}-{uuid.uuid4().hex[:6]}")
