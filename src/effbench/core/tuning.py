"""What is set on this device that moves benchmark numbers, and tuning it for benchmarking (after
pyperf's `system show|tune|reset` operations): CPU governor, turbo/boost, frequency limits, ASLR,
and other load (shown, never changed).

`tune` records what it changed in `/run/effbench/tuned.json` (cleared by a reboot, as the settings
themselves are), `reset` puts the recorded values back, and every cell records that file's summary,
so a result says whether its device was tuned. Paths are read under the probes' root
(EFFBENCH_SYS_ROOT), so tests work on a tree they built.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional

from .probes.base import entries, read_file, sys_root

STATE = "run/effbench/tuned.json"


def _write(path: str, value: str) -> Optional[str]:
    """None, or why the write failed."""
    try:
        with open(path, "w") as f:
            f.write(value + "\n")
        return None
    except OSError as e:
        return "%s: %s" % (path, e.strerror or e)


class Operation:
    """One setting: `read` it, say what to change (`advice`), `apply` the benchmarking value and
    return the values it replaced, `restore` them."""

    name = ""
    tunable = True

    def __init__(self, root: str):
        self.root = root

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def files(self) -> Dict[str, str]:
        """{path: the value wanted for benchmarking} of the files this operation owns here."""
        return {}

    def read(self) -> Dict[str, Optional[str]]:
        return {p: read_file(p) for p in self.files()}

    def advice(self) -> Optional[str]:
        bad = {p: v for p, v in self.read().items() if v is not None and v != self.files()[p]}
        if not bad:
            return None
        wanted = sorted(set(self.files()[p] for p in bad))
        return "%d file(s) not at %s (e.g. %s = %s)" % (
            len(bad),
            "/".join(wanted),
            next(iter(bad)),
            next(iter(bad.values())),
        )

    def apply(self) -> Dict[str, Any]:
        changed, errors = {}, []
        for p, want in self.files().items():
            old = read_file(p)
            if old is None or old == want:
                continue
            err = _write(p, want)
            if err:
                errors.append(err)
            else:
                changed[p] = old
        return {"changed": changed, "errors": errors}

    def restore(self, changed: Dict[str, str]) -> List[str]:
        return [e for e in (_write(p, v) for p, v in changed.items()) if e]


class Governor(Operation):
    name = "cpu governor"

    def files(self) -> Dict[str, str]:
        base = self.path("sys/devices/system/cpu")
        out = {}
        for cpu in entries(base, "cpu"):
            p = os.path.join(base, cpu, "cpufreq", "scaling_governor")
            if cpu[3:].isdigit() and os.path.exists(p):
                out[p] = "performance"
        return out


class Turbo(Operation):
    name = "turbo/boost"

    def files(self) -> Dict[str, str]:
        out = {}
        no_turbo = self.path("sys/devices/system/cpu/intel_pstate/no_turbo")
        boost = self.path("sys/devices/system/cpu/cpufreq/boost")
        if os.path.exists(no_turbo):
            out[no_turbo] = "1"  # turbo off: clocks that do not depend on temperature and load
        if os.path.exists(boost):
            out[boost] = "0"
        return out


class FrequencyLimits(Operation):
    name = "frequency limits"

    def files(self) -> Dict[str, str]:
        base = self.path("sys/devices/system/cpu")
        out = {}
        for cpu in entries(base, "cpu"):
            d = os.path.join(base, cpu, "cpufreq")
            top = read_file(os.path.join(d, "cpuinfo_max_freq"))
            if cpu[3:].isdigit() and top:
                out[os.path.join(d, "scaling_max_freq")] = top
                out[os.path.join(d, "scaling_min_freq")] = top  # pinned at the maximum, as pyperf does
        return out


class Aslr(Operation):
    name = "ASLR"

    def files(self) -> Dict[str, str]:
        p = self.path("proc/sys/kernel/randomize_va_space")
        return {p: "2"} if os.path.exists(p) else {}  # full randomisation, as pyperf keeps it


class OtherLoad(Operation):
    name = "other load"
    tunable = False

    def _load(self):
        return (os.getloadavg()[0], os.cpu_count() or 1) if hasattr(os, "getloadavg") else None

    def read(self) -> Dict[str, Optional[str]]:
        load = self._load()
        return {"load average": "%.2f on %d CPUs" % load} if load else {}

    def advice(self) -> Optional[str]:
        load = self._load()
        if load and load[0] > 0.5 * load[1]:
            return "stop other work before measuring"
        return None


OPERATIONS = (Governor, Turbo, FrequencyLimits, Aslr, OtherLoad)


def show(root: Optional[str] = None) -> List[Dict[str, Any]]:
    """One row per operation: name, current values, what to change (None: fine or not present)."""
    r = root if root is not None else sys_root()
    rows = []
    for cls in OPERATIONS:
        op = cls(r)
        values = op.read()
        rows.append({"name": op.name, "values": values, "present": bool(values), "advice": op.advice()})
    return rows


def tune(root: Optional[str] = None) -> Dict[str, Any]:
    """Apply every tunable operation; record what changed (kept from an earlier tune) for `reset`."""
    r = root if root is not None else sys_root()
    state = state_of(r) or {"at": None, "changed": {}}
    errors: List[str] = []
    for cls in OPERATIONS:
        op = cls(r)
        if op.tunable:
            done = op.apply()
            for p, old in done["changed"].items():
                state["changed"].setdefault(p, old)  # the value before the first tune is the one to restore
            errors += done["errors"]
    state["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = os.path.join(r, STATE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(state, f, indent=1)
    return {"changed": state["changed"], "errors": errors}


def reset(root: Optional[str] = None) -> Dict[str, Any]:
    r = root if root is not None else sys_root()
    state = state_of(r)
    if state is None:
        return {"restored": {}, "errors": [], "was_tuned": False}
    errors = Operation(r).restore(state.get("changed") or {})
    if not errors:
        os.unlink(os.path.join(r, STATE))
    return {"restored": state.get("changed") or {}, "errors": errors, "was_tuned": True}


def state_of(root: Optional[str] = None) -> Optional[Dict[str, Any]]:
    text = read_file(os.path.join(root if root is not None else sys_root(), STATE))
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def tuned_summary(root: Optional[str] = None) -> Dict[str, Any]:
    """What a result records: whether this device was tuned, when, and how many settings."""
    state = state_of(root)
    if not state:
        return {"tuned": False}
    return {"tuned": True, "at": state.get("at"), "settings": len(state.get("changed") or {})}
