"""Sweeps: a matrix of cells from a YAML file, each run isolated and committed at once.

An interrupted sweep resumes (`--resume`) by skipping the cells whose configuration hash is
already stored.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from effbench import yamlfile
from effbench.errors import UsageError
from effbench.harness.config import RunConfig

_MATRIX_KEYS = {"models", "backends", "batches", "precisions", "scenarios", "devices", "resolutions"}


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    models: list[str] = Field(min_length=1)
    backends: list[str] = Field(min_length=1)
    batches: list[Annotated[int, Field(ge=1, le=4096)]] = Field(default_factory=lambda: [1])
    precisions: list[str] = Field(default_factory=lambda: ["fp32"])
    scenarios: list[str] = Field(default_factory=lambda: ["latency"])
    devices: list[str] = Field(default_factory=lambda: ["cpu"])
    resolutions: list[Annotated[int, Field(ge=8, le=4096)]] | None = None  # input sizes, one cell each

    def run_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_validation_error(path: str, err: ValidationError) -> str:
    e = err.errors()[0]
    got = e.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{path}: key '{_loc(e['loc'])}': {e['msg'].lower()}{got_text}"


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> list[RunConfig]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"sweep file not found: {path}")
    try:
        data = yamlfile.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with 'models' and 'backends' lists at the top level")
    for key in _MATRIX_KEYS:  # a single value is accepted for a one-element list
        if key in data and not isinstance(data[key], list):
            data[key] = [data[key]]
    if isinstance(data.get("backends"), list):  # YAML reads a bare `null` as None: the null backend
        data["backends"] = ["null" if b is None else b for b in data["backends"]]
    try:
        sweep = SweepFile(**data)
    except ValidationError as e:
        raise UsageError(describe_validation_error(str(path), e)) from None
    opts = {**sweep.run_options(), **(overrides or {})}
    cells = []
    if sweep.resolutions and "input_size" in opts:
        raise UsageError(f"{path}: give either 'resolutions' or 'input_size', not both")
    sizes: list[int | None] = list(sweep.resolutions) if sweep.resolutions else [opts.pop("input_size", None)]
    for model, backend, device, batch, precision, scenario, size in itertools.product(
        sweep.models, sweep.backends, sweep.devices, sweep.batches, sweep.precisions, sweep.scenarios, sizes
    ):
        try:
            cells.append(
                RunConfig.model_validate(
                    {
                        "model": model,
                        "backend": backend,
                        "device": device,
                        "batch_size": batch,
                        "precision": precision,
                        "scenario": scenario,
                        "input_size": size,
                        **opts,
                    }
                )
            )
        except ValidationError as e:
            raise UsageError(describe_validation_error(str(path), e)) from None
    return cells
