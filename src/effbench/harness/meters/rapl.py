"""CPU package energy from Intel RAPL through the Linux powercap interface.

/sys/class/powercap/intel-rapl:N/energy_uj is a cumulative counter in microjoules that wraps at
max_energy_range_uj (the same interface also serves AMD Zen packages). Since Linux 5.10 it is
readable by root only. A package is a top-level zone (intel-rapl:N, not intel-rapl:N:M); its
sub-zones (core, uncore, dram) are already inside the package figure.

`RaplMeter` implements the meter interface of `energy.py`: read_energy_mj() accumulates each
package's wrapped deltas, read_power_mw() is None (RAPL has no instantaneous power reading).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
UNREADABLE = "energy unavailable: RAPL counters not readable (/sys/class/powercap)"

_TOP_ZONE = re.compile(r"intel-rapl:\d+")


@dataclass
class RaplDomain:
    path: Path
    name: str
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def wrap_delta(prev_uj: int, cur_uj: int, max_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps to 0 after max_range_uj.

    One wrap at most is assumed between readings: at 500 W a typical 262 kJ range takes about
    nine minutes to wrap, and the windows read the counter far more often than that.
    """
    if cur_uj >= prev_uj:
        return cur_uj - prev_uj
    return cur_uj + max_range_uj - prev_uj


def find_domains(root: Path | None = None) -> tuple[list[RaplDomain], str | None]:
    """The package zones whose counters this process can read, or ([], reason)."""
    root = POWERCAP if root is None else root
    try:
        zones = sorted(p for p in root.iterdir() if _TOP_ZONE.fullmatch(p.name))
    except OSError:
        return [], UNREADABLE
    if not zones:
        return [], UNREADABLE
    domains = []
    for z in zones:
        try:
            name = (z / "name").read_text().strip() if (z / "name").exists() else z.name
            max_range = int((z / "max_energy_range_uj").read_text().strip())
            domain = RaplDomain(z, name, max_range)
            domain.read_uj()
        except (OSError, ValueError):
            continue
        domains.append(domain)
    if not domains:
        return [], UNREADABLE
    return domains, None


class RaplMeter:
    kind = "rapl"
    has_power = False

    def __init__(self, domains: list[RaplDomain]):
        self.domains = domains
        self.has_counter = True
        self._last = [d.read_uj() for d in domains]
        self._total_uj = 0

    def read_energy_mj(self) -> float:
        for i, d in enumerate(self.domains):
            cur = d.read_uj()
            self._total_uj += wrap_delta(self._last[i], cur, d.max_range_uj)
            self._last[i] = cur
        return self._total_uj / 1000.0

    def read_power_mw(self) -> float | None:
        return None

    def read_reasons(self) -> int:
        return 0

    def clock(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def info(self) -> dict:
        return {
            "domains": [d.name for d in self.domains],
            "zones": [d.path.name for d in self.domains],
            "scope": "whole CPU package(s): every process and core, not only this cell's threads",
        }

    def close(self) -> None:
        pass


def open_meter(root: Path | None = None) -> tuple[RaplMeter | None, str | None]:
    domains, reason = find_domains(root)
    if reason:
        return None, reason
    return RaplMeter(domains), None
