"""Answers remembered in a JSON file in the cache (per library version, by the caller's path), so a
question asked before costs no heavy import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def remembered(path: Path, key: str, compute: Callable[[], Any]) -> Any:
    """The answer stored under `key` in `path`, else `compute()` stored there; an unreadable file
    counts as empty and an unwritable cache only costs the next caller a recompute."""
    try:
        answers = json.loads(path.read_text())
    except (OSError, ValueError):
        answers = {}
    if key in answers:
        return answers[key]
    answers[key] = value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{id(answers)}.tmp")
        tmp.write_text(json.dumps(answers))
        tmp.replace(path)
    except OSError:
        pass
    return value
