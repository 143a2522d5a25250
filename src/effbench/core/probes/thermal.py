"""Thermal zones (/sys/class/thermal/thermal_zone*): every zone's type and temperature. Phones,
Jetsons and boards name their zones (cpu-0-0-usr, skin-therm, CPU-therm, GPU-therm, soc_thermal):
the names are kept as the device gives them, and `kind` sorts them into cpu / gpu / soc / skin /
battery / other."""

from __future__ import annotations

from typing import Any, Dict

from .base import Probe, entries, millidegrees, read_file, read_number

_KINDS = (
    ("battery", ("battery", "bms", "batt")),
    ("skin", ("skin", "xo-therm", "quiet-therm", "back-therm", "case")),
    ("gpu", ("gpu", "gpuss", "mali", "g3d")),
    ("cpu", ("cpu", "x86_pkg", "cluster", "little", "big", "mid", "apc", "core")),
    ("soc", ("soc", "tj", "ao-therm", "pmic", "ddr", "aoss", "tsens")),
)


def zone_kind(name: str) -> str:
    low = name.lower()
    for kind, needles in _KINDS:
        if any(n in low for n in needles):
            return kind
    return "other"


class ThermalZones(Probe):
    name = "thermal"

    def _zones(self):
        base = self.path("sys/class/thermal")
        return [(z, self.path("sys/class/thermal", z)) for z in entries(base, "thermal_zone")]

    def available(self) -> bool:
        if any(read_number(p + "/temp") is not None for _, p in self._zones()):
            return True
        self.reason = "no readable thermal zone under /sys/class/thermal"
        return False

    def read(self) -> Dict[str, Any]:
        zones = {}
        for zone, p in self._zones():
            c = millidegrees(read_number(p + "/temp"))
            if c is None:
                continue
            name = read_file(p + "/type") or zone
            key = name if name not in zones else "%s/%s" % (name, zone)
            zones[key] = {"zone": zone, "temp_c": c, "kind": zone_kind(name)}
        return {"zones": zones}

    def temperatures(self, reading: Dict[str, Any]) -> Dict[str, float]:
        return {k: z["temp_c"] for k, z in (reading.get("zones") or {}).items()}
