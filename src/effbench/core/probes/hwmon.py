"""hwmon sensors (/sys/class/hwmon/hwmon*/temp*_input): coretemp, k10temp, nvme, acpitz ..."""

from __future__ import annotations

from typing import Any, Dict

from .base import Probe, entries, millidegrees, read_file, read_number


class Hwmon(Probe):
    name = "hwmon"

    def _sensors(self):
        base = self.path("sys/class/hwmon")
        for chip in entries(base, "hwmon"):
            d = self.path("sys/class/hwmon", chip)
            chip_name = read_file(d + "/name") or chip
            for f in entries(d, "temp"):
                if f.endswith("_input"):
                    stem = f[: -len("_input")]
                    label = read_file("%s/%s_label" % (d, stem)) or stem
                    yield "%s/%s" % (chip_name, label), d + "/" + f

    def available(self) -> bool:
        if any(read_number(p) is not None for _, p in self._sensors()):
            return True
        self.reason = "no readable temperature under /sys/class/hwmon"
        return False

    def read(self) -> Dict[str, Any]:
        temps = {}
        for name, p in self._sensors():
            c = millidegrees(read_number(p))
            if c is not None:
                temps[name] = c
        return {"temps_c": temps}

    def temperatures(self, reading: Dict[str, Any]) -> Dict[str, float]:
        return dict(reading.get("temps_c") or {})
