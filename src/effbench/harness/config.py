"""Typed configuration of one cell (model x backend x device x batch x precision x scenario)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
SCENARIOS = ("latency", "throughput")

# Options that change what is measured go into the configuration hash; these do not.
_NOT_HASHED = {"tag", "timeout_s", "db", "devices_file"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    backend: str
    device: str = "cpu"
    scenario: Literal["latency", "throughput"] = "latency"
    batch_size: int = Field(1, ge=1, le=4096)
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    threads: int | None = Field(None, ge=1)
    cpus: list[int] | None = None
    warmup_s: float = Field(1.0, ge=0)
    warmup_iters: int = Field(10, ge=0)
    duration_s: float = Field(3.0, gt=0)
    min_iters: int = Field(30, ge=1)
    max_iters: int = Field(200_000, ge=1)  # bounds stored raw samples for sub-microsecond "models"
    target_ci: float | None = Field(None, gt=0, lt=1)  # relative half-width of the median's 95% CI
    max_duration_s: float = Field(60.0, gt=0)
    requests: int | None = Field(None, ge=1)  # in-flight requests in the throughput scenario
    compile: bool = False
    pretrained: bool = False
    input_size: int | None = Field(None, ge=8)
    parity: bool = True
    seed: int = 0
    options: dict[str, str] = Field(default_factory=dict)  # backend-specific, from --opt key=value
    channels_last: bool = False
    cuda_graph: bool = False
    energy_window_s: float = Field(10.0, gt=0)
    timeout_s: float = Field(900.0, gt=0)
    tag: str | None = None
    db: str | None = None
    devices_file: str | None = None

    @field_validator("cpus")
    @classmethod
    def _cpus_non_negative(cls, v):
        if v is not None and (not v or any(c < 0 for c in v)):
            raise ValueError("cpus must be a non-empty list of CPU indices >= 0")
        return v

    def config_hash(self) -> str:
        data = {k: v for k, v in self.model_dump().items() if k not in _NOT_HASHED}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.model} | {self.backend} | {self.device} | b{self.batch_size} | {self.precision} | {self.scenario}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def parse_percent(text: str | float | None) -> float | None:
    """'1%' -> 0.01, '0.01' -> 0.01, None -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip()
    if t.endswith("%"):
        return float(t[:-1]) / 100
    v = float(t)
    return v / 100 if v >= 1 else v


def parse_int_list(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; '0-3' -> [0, 1, 2, 3]."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    if not out:
        raise ValueError(f"expected a comma-separated list of integers, got {text!r}")
    return out
