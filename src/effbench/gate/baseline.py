"""Baseline files: a named snapshot of cells (raw samples included) meant to be committed.

    {"schema": "effbench-baseline", "schema_version": 1, "name": ..., "created_at": ...,
     "source": ..., "cells": [Cell.to_dict(), ...]}

Raw samples are kept, not just summaries, because the gate's tests need them.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effbench.errors import UsageError
from effbench.gate.cells import (
    KEY_FIELDS,
    Cell,
    Invalid,
    check,
    check_optional_dict,
    check_outcome,
    is_number,
    read_json_file,
)

SCHEMA = "effbench-baseline"
SCHEMA_VERSION = 1
DEFAULT_DIR = ".effbench/baselines"


@dataclass
class Baseline:
    name: str
    path: Path
    created_at: str
    source: str
    cells: list[Cell]


def resolve(name_or_path: str, directory: str | Path = DEFAULT_DIR) -> Path:
    """A bare NAME means `<directory>/<NAME>.json`; anything that looks like a path is a path."""
    if "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".json"):
        return Path(name_or_path)
    return Path(directory) / f"{name_or_path}.json"


def save(name_or_path: str, cells: list[Cell], *, directory: str | Path = DEFAULT_DIR, source: str) -> Path:
    path = resolve(name_or_path, directory)
    data = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "name": path.stem,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "cells": [_rounded(c.to_dict()) for c in cells],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(data) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write baseline '{path}': {exc.strerror or exc}") from exc
    return path


def load(name_or_path: str, directory: str | Path = DEFAULT_DIR) -> Baseline:
    path = resolve(name_or_path, directory)
    if not path.is_file():
        raise UsageError(f"baseline '{name_or_path}' not found (looked for {path})")
    data = read_json_file(path, "baseline")
    try:
        cells = validate(data)
    except Invalid as exc:
        raise UsageError(f"baseline '{path}' is not valid: {exc}") from exc
    return Baseline(
        name=str(data.get("name") or path.stem),
        path=path,
        created_at=str(data.get("created_at", "")),
        source=str(data.get("source", "")),
        cells=cells,
    )


def validate(data: Any) -> list[Cell]:
    check(isinstance(data, dict), "the top level", "must be an object")
    check(data.get("schema") == SCHEMA, "schema", f"must be '{SCHEMA}' (is this an effbench baseline?)")
    version = data.get("schema_version")
    check(
        version == SCHEMA_VERSION,
        "schema_version",
        f"{version!r} is not supported (this effbench reads {SCHEMA_VERSION})",
    )
    cells = data.get("cells")
    check(isinstance(cells, list), "cells", "must be a list")
    for i, cell in enumerate(cells):
        where = f"cells[{i}]"
        check(isinstance(cell, dict), where, "must be an object")
        key = cell.get("key")
        check(isinstance(key, dict), f"{where}.key", "must be an object")
        for f in KEY_FIELDS:
            ok = isinstance(key.get(f), int) if f == "batch_size" else isinstance(key.get(f), str)
            check(ok, f"{where}.key.{f}", "must be an integer" if f == "batch_size" else "must be a string")
        check(
            key.get("config_hash") is None or isinstance(key["config_hash"], str),
            f"{where}.key.config_hash",
            "must be a string or null",
        )
        check(isinstance(cell.get("label"), str), f"{where}.label", "must be a string")
        check("samples_ms" in cell, f"{where}.samples_ms", "is missing")
        check_outcome(cell, where)
        check_optional_dict(cell.get("summary"), f"{where}.summary")
        tp = cell.get("throughput_per_s")
        check(tp is None or is_number(tp), f"{where}.throughput_per_s", "must be a number or null")
    return [Cell.from_dict(c) for c in cells]


def _rounded(cell: dict[str, Any]) -> dict[str, Any]:
    # 1 ns in ms: the timer's own resolution, and it keeps committed files small
    cell["samples_ms"] = [round(s, 6) for s in cell["samples_ms"]]
    return cell


def _dump(data: dict[str, Any]) -> str:
    """Indented JSON, but lists of numbers stay on one line (thousands of samples per cell)."""
    text = json.dumps(data, indent=1)
    return re.sub(
        r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )
