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


def write_confined(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` to folder/name atomically and never outside `folder`: `name` must be one path
    component (no separator, not '.' or '..', no dot file), and an existing symlink of that name is
    replaced, not followed."""
    if not name or name.startswith(".") or Path(name).name != name or "/" in name or os.sep in name:
        raise ValueError(f"{name!r} is not a plain file name")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)  # replaces a symlink itself, never the file it points at
    return folder / name
