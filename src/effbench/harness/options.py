"""`--opt KEY=VALUE`: the options every backend takes (here) and the backend's own (its Options
model), validated before any work."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from effbench.backends.base import Backend, BackendOptions, describe_option_error, type_name
from effbench.errors import UsageError


class CommonOptions(BaseModel):
    """Options of the harness itself, accepted with every backend."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    exporter: Literal["torchscript", "dynamo"] = Field("torchscript", description="torch -> ONNX exporter")
    analysis: bool = Field(True, description="graph analysis and roofline of the result (0 to skip)")
    energy: bool | None = Field(None, description="measure energy (default: on for CUDA, off for CPU RAPL)")
    energy_windows: int | None = Field(None, ge=1, description="energy windows (default 3, 2 below 10 s)")
    idle_s: float = Field(5.0, ge=0, description="idle-power measurement before the energy windows (NVML: >= 5 s)")
    power_hz: float = Field(20.0, ge=1, le=50, description="power sampling rate (NVML)")


def parse_common(raw: dict[str, str]) -> CommonOptions:
    mine = {k: v for k, v in raw.items() if k in CommonOptions.model_fields}
    try:
        return CommonOptions.model_validate(mine)
    except ValidationError as e:
        raise UsageError(
            describe_option_error("every backend", e, mine).replace(
                "`bench backends --options every backend`", "`bench backends --options NAME`"
            )
        ) from None


def parse_all(backend: Backend, raw: dict[str, str]) -> tuple[CommonOptions, BackendOptions]:
    """(the harness's options, the backend's typed options) of `--opt` strings; UsageError with a
    close match for an unknown key, or naming the option and what it accepts for a bad value."""
    common = parse_common(raw)
    own = {k: v for k, v in raw.items() if k not in CommonOptions.model_fields}
    return common, backend.parse_options(own, CommonOptions)


def describe(backend: Backend) -> list[dict[str, object]]:
    """name, type, default and help of every option `backend` accepts (its own first)."""
    rows = []
    for owner, model in ((backend.name, backend.Options), ("all backends", CommonOptions)):
        for name, f in model.model_fields.items():
            rows.append(
                {
                    "option": name,
                    "type": type_name(f.annotation),
                    "default": f.default,
                    "help": f.description or "",
                    "applies_to": owner,
                }
            )
    return rows
