"""Typed configuration of one cell (model x backend x device x batch x precision x scenario).

Defaults come from effbench.harness.defaults, the one place they are stated (the command line reads
them there too).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from effbench.core.probes import gate
from effbench.core.scenarios import SCENARIOS as SCENARIO_REGISTRY
from effbench.core.scenarios import get_scenario
from effbench.core.scenarios import own_settings as scenario_settings
from effbench.core.settings import MeasureSettings
from effbench.harness.defaults import RUN_DEFAULTS as DEFAULTS

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
SCENARIOS = tuple(sorted(SCENARIO_REGISTRY))
MAX_BATCH = 4096

# Options that change what is measured go into the configuration hash; these do not.
# The thermal gate, pauses and telemetry set the conditions, not what is measured.
_NOT_HASHED = {
    "tag",
    "timeout_s",
    "db",
    "devices_file",
    "telemetry",
    "max_start_temp",
    "cooldown_timeout_s",
    "cooldown_s",
}
# hashed only when not at their default, so configurations from before these options keep their hashes
_HASHED_WHEN_SET = {"window_s", "target_qps", "latency_bound_ms", "samples_per_query"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str
    backend: str
    device: str = DEFAULTS["device"]
    scenario: str = DEFAULTS["scenario"]  # a registered scenario (effbench.core.scenarios)
    batch_size: int = Field(DEFAULTS["batch_size"], ge=1, le=MAX_BATCH)
    precision: Literal["fp32", "fp16", "bf16", "int8"] = DEFAULTS["precision"]
    threads: int | None = Field(DEFAULTS["threads"], ge=1, le=1024)
    cpus: list[int] | Literal["big", "little"] | None = DEFAULTS["cpus"]  # big / little: resolved on the device
    warmup_s: float = Field(DEFAULTS["warmup_s"], ge=0, le=3600)
    warmup_iters: int = Field(DEFAULTS["warmup_iters"], ge=0, le=10_000_000)
    duration_s: float = Field(DEFAULTS["duration_s"], gt=0, le=86_400)
    min_iters: int = Field(DEFAULTS["min_iters"], ge=1, le=100_000_000)
    max_iters: int = Field(DEFAULTS["max_iters"], ge=1, le=100_000_000)  # bounds stored raw samples
    target_ci: float | None = Field(DEFAULTS["target_ci"], gt=0, lt=1)  # relative half-width of the median's 95% CI
    max_duration_s: float = Field(DEFAULTS["max_duration_s"], gt=0, le=86_400)
    requests: int | None = Field(DEFAULTS["requests"], ge=1, le=1024)  # in-flight requests (throughput)
    profile_iters: int | None = Field(DEFAULTS["profile_iters"], ge=1, le=100_000)
    window_s: float | None = Field(DEFAULTS["window_s"], gt=0, le=86_400)  # sustained scenario's window
    target_qps: float | None = Field(DEFAULTS["target_qps"], gt=0, le=10_000_000)  # LoadGen server
    latency_bound_ms: float | None = Field(DEFAULTS["latency_bound_ms"], gt=0, le=3_600_000)  # LoadGen server p99
    samples_per_query: int = Field(DEFAULTS["samples_per_query"], ge=1, le=4096)  # LoadGen multistream
    telemetry: bool = DEFAULTS["telemetry"]
    max_start_temp: float | None = DEFAULTS["max_start_temp"]  # thermal gate, C
    cooldown_timeout_s: float = Field(DEFAULTS["cooldown_timeout_s"], ge=0, le=86_400)
    cooldown_s: float = Field(DEFAULTS["cooldown_s"], ge=0, le=86_400)
    compile: bool = DEFAULTS["compile"]
    pretrained: bool = DEFAULTS["pretrained"]
    weights: str | None = DEFAULTS["weights"]  # a state_dict file (--weights), resolved to an absolute path
    input_size: int | None = Field(DEFAULTS["input_size"], ge=8, le=4096)
    parity: bool = DEFAULTS["parity"]
    seed: int = DEFAULTS["seed"]
    options: dict[str, str] = Field(default_factory=dict)  # typed per backend (backends.*.Options)
    channels_last: bool = DEFAULTS["channels_last"]
    cuda_graph: bool = DEFAULTS["cuda_graph"]
    energy_window_s: float = Field(DEFAULTS["energy_window_s"], gt=0, le=3600)
    calib: str | None = DEFAULTS["calib"]  # calibration images (int8)
    calib_size: int = Field(DEFAULTS["calib_size"], ge=1, le=1_000_000)
    eval: str | None = DEFAULTS["eval"]  # evaluation images: accuracy on the timed engine
    eval_labels: str | None = DEFAULTS["eval_labels"]
    eval_limit: int | None = Field(DEFAULTS["eval_limit"], ge=1)
    skip_bad_images: bool = DEFAULTS["skip_bad_images"]
    max_drop: float | None = Field(
        DEFAULTS["max_drop"], gt=0, lt=100
    )  # accuracy-aware int8: tolerated top-1 drop, points
    # a run fails when more than this % of the model (MACs, else nodes) ran outside the requested
    # delegate/device or precision (the backend's placement summary)
    max_fallback: float | None = Field(DEFAULTS["max_fallback"], ge=0, le=100)
    # preprocessing of --eval / --calib images where the model's own data configuration does not say (or to override it)
    crop_pct: float | None = Field(DEFAULTS["crop_pct"], gt=0, le=1)
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = DEFAULTS["interpolation"]
    mean: str | None = DEFAULTS["mean"]  # "0.485,0.456,0.406"
    std: str | None = DEFAULTS["std"]
    timeout_s: float = Field(DEFAULTS["timeout_s"], gt=0, le=7 * 86_400)
    tag: str | None = DEFAULTS["tag"]
    db: str | None = None
    devices_file: str | None = None

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, v):
        if v is None or isinstance(v, str):
            return v
        if not v or any(c < 0 for c in v):
            raise ValueError("cpus must be a non-empty list of CPU indices >= 0")
        usable = (
            sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        )
        missing = sorted(set(v) - set(usable))
        if missing:
            raise ValueError(
                f"CPU(s) {', '.join(map(str, missing))} not available here (usable: {','.join(map(str, usable))})"
            )
        return sorted(set(v))

    @field_validator("duration_s", "window_s", "cooldown_s", "cooldown_timeout_s", mode="before")
    @classmethod
    def _duration_units(cls, v):
        if isinstance(v, str):  # a sweep file may say 10m or 60s
            return parse_duration(v) if v.strip() else None
        return v

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, v):
        if v not in SCENARIO_REGISTRY:
            raise ValueError(f"unknown scenario; known: {', '.join(SCENARIOS)}")
        return v

    @field_validator("max_start_temp")
    @classmethod
    def _plausible_temp(cls, v):
        why = gate.check_limit(v)
        if why:
            raise ValueError(why)
        return v

    @model_validator(mode="after")
    def _scenario_accepts(self):
        scenario = get_scenario(self.scenario)
        for name in set(scenario_settings()) - set(scenario.own_settings):
            # another scenario's setting (a sweep gives it to every cell): unused here, and back at its default
            # so that it neither reaches the worker nor changes the configuration hash
            setattr(self, name, DEFAULTS[name])
        settings = MeasureSettings(
            runtime=self.backend,
            input_shape=[self.batch_size],
            scenario=self.scenario,
            duration_s=self.duration_s,
            **{name: getattr(self, name) for name in scenario.own_settings},
        )
        why = scenario.check(settings)
        if why:
            raise ValueError(f"--scenario {self.scenario}: {why}")
        return self._timeout_covers_the_waits(scenario.certain_s(settings))

    def _timeout_covers_the_waits(self, scenario_s: float):
        """A long sustained run, a pause and a thermal gate's wait all happen inside the cell's
        --timeout: the default grows to cover them; a --timeout given that cannot is refused."""
        waits = scenario_s + self.cooldown_s + (self.cooldown_timeout_s if self.max_start_temp is not None else 0.0)
        if not waits:
            return self
        if self.timeout_s == DEFAULTS["timeout_s"]:
            self.timeout_s = DEFAULTS["timeout_s"] + waits
        elif self.timeout_s < waits:
            raise ValueError(
                f"--timeout {self.timeout_s:g} s is shorter than the cell's sustained run, pause and thermal gate "
                f"({waits:g} s): give a longer --timeout"
            )
        return self

    @field_validator("options", mode="before")
    @classmethod
    def _option_strings(cls, v):
        if isinstance(v, dict):  # a sweep file may give numbers and booleans
            return {str(k): str(val).lower() if isinstance(val, bool) else str(val) for k, val in v.items()}
        return v

    @field_validator("backend")
    @classmethod
    def _canonical_backend(cls, v):
        from effbench.backends.registry import canonical_name

        return canonical_name(v)

    @field_validator("weights", "calib", "eval", "eval_labels")
    @classmethod
    def _absolute(cls, v):
        return os.path.abspath(os.path.expanduser(v)) if v else v

    def config_hash(self) -> str:
        data = {
            k: v
            for k, v in self.model_dump().items()
            if k not in _NOT_HASHED and not (k in _HASHED_WHEN_SET and v == DEFAULTS[k])
        }
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        return (
            f"{self.model} | {self.backend} | {self.device} | b{self.batch_size} | {self.precision} | {self.scenario}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        if d.get("db"):
            from effbench.harness.urls import redact

            d["db"] = redact(d["db"])
        return d


def parse_percent(text: str | float | None) -> float | None:
    """'1%' -> 0.01, '0.01' -> 0.01, '1' -> 0.01 (a number >= 1 is a percentage), None -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        v = float(text)
    else:
        t = str(text).strip()
        try:
            v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
        except ValueError:
            raise ValueError(f"{text!r} is not a percentage") from None
        if not t.endswith("%") and v >= 1:
            v /= 100
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite percentage")
    return v


_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | None) -> float | None:
    """'10m' -> 600.0, '60s' -> 60.0, '1.5h' -> 5400.0, '250ms' -> 0.25, '3' -> 3.0 (seconds)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        v = float(text)
    else:
        t = str(text).strip().lower()
        num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = t[len(num) :].strip() or "s"
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r}; use ms, s, m or h")
        try:
            v = float(num) * _UNITS[unit]
        except ValueError:
            raise ValueError(f"{text!r} is not a duration") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return v


def parse_int_list(text: str, what: str = "value", allow_ranges: bool = False, minimum: int = 1) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; with allow_ranges '0-3' -> [0, 1, 2, 3]. Strict: no empty items,
    nothing below `minimum`."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty item in {text!r}")
        lo, sep, hi = part.partition("-")
        try:
            if sep and allow_ranges and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a {what}") from None
    bad = [v for v in out if v < minimum]
    if bad:
        raise ValueError(f"{bad[0]} is below {minimum}")
    return out
