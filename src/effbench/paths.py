"""Where effbench keeps things on this machine (any layer may ask)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Artifacts, analyses and references: $EFFBENCH_CACHE, else $XDG_CACHE_HOME/effbench, else
    ~/.cache/effbench."""
    env = os.environ.get("EFFBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "effbench"


def state_dir() -> Path:
    """Results that could not be stored (the spool): $EFFBENCH_STATE, else $XDG_STATE_HOME/effbench,
    else ~/.local/state/effbench."""
    env = os.environ.get("EFFBENCH_STATE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "effbench"
