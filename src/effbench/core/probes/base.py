"""The probe contract: one small class per telemetry source (after pyperf's `_system.py`
operations). A probe says whether its source exists here (`available()`, with the `reason` when
not) and reads it (`read()`: a flat, JSON-ready dict). Probes never raise on a missing or odd file.

Every path is read under a root (`EFFBENCH_SYS_ROOT`, default `/`), so a test can hand the probes a
sysfs tree it built; no probe imports anything outside the standard library at module level.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ..fingerprint import read_text as read_file

__all__ = ["ROOT_ENV", "Probe", "entries", "millidegrees", "read_file", "read_number", "sys_root"]

ROOT_ENV = "EFFBENCH_SYS_ROOT"


def sys_root() -> str:
    return os.environ.get(ROOT_ENV) or "/"


def read_number(path: str) -> Optional[float]:
    text = read_file(path)
    try:
        return float(text) if text else None
    except ValueError:
        return None


def millidegrees(value: Optional[float]) -> Optional[float]:
    """sysfs temperatures are millidegrees; a few drivers give degrees. Implausible values: None."""
    if value is None:
        return None
    c = value / 1000.0 if abs(value) >= 200 else value
    return round(c, 1) if -40.0 <= c <= 150.0 else None


def entries(path: str, prefix: str) -> List[str]:
    """Names under `path` starting with `prefix`, in natural order (zone2 before zone10)."""
    try:
        names = [n for n in os.listdir(path) if n.startswith(prefix)]
    except OSError:
        return []

    def key(name: str) -> Any:
        tail = name[len(prefix) :]
        return (0, int(tail), "") if tail.isdigit() else (1, 0, tail)

    return sorted(names, key=key)


class Probe:
    """One telemetry source. `name` keys its reading in a telemetry snapshot."""

    name = "probe"
    reason = ""  # why the source is unavailable (set by available())

    def __init__(self, root: Optional[str] = None):
        self.root = root if root is not None else sys_root()

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *[p.lstrip("/") for p in parts])

    def available(self) -> bool:
        raise NotImplementedError

    def read(self) -> Dict[str, Any]:
        raise NotImplementedError

    def temperatures(self, reading: Dict[str, Any]) -> Dict[str, float]:
        """The temperatures (C) in one of this probe's readings, by sensor name (none by default)."""
        return {}
