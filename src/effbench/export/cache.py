"""Content-addressed artifact cache.

Key: model id, weights key, input shape, precision, exporter and library versions. A finished
artifact lives in `<cache>/artifacts/<key>/` with a `meta.json`; it is built in a temporary
directory and renamed into place, so a crash mid-export never leaves a half artifact behind. What
a build returns (parameter count, the ONNX path an IR was made from) is kept in meta.json.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from effbench.errors import UsageError
from effbench.paths import cache_root

__all__ = [
    "Artifact",
    "NotCached",
    "building_allowed",
    "cache_key",
    "cache_root",
    "cached_only",
    "check_writable",
    "dir_size",
    "get_or_build",
]


@dataclass
class Artifact:
    format: str  # "torch" | "onnx" | "openvino" | "coreml" | "tensorrt" | "none"
    path: Path | None  # main file (None for torch recipes)
    key: str = ""
    cached: bool = False
    export_s: float = 0.0
    bytes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """The artifact's main file (every format but a torch recipe has one)."""
        if self.path is None:
            raise ValueError(f"a {self.format} artifact has no file")
        return self.path


def cache_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_writable(root: Path | None = None) -> Path:
    """The cache directory, created and writable, or a UsageError naming EFFBENCH_CACHE."""
    root = root or cache_root()
    try:
        (root / "artifacts").mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkstemp(prefix=".write-test-", dir=root)[1])
        probe.unlink()
    except OSError as e:
        raise UsageError(
            f"cache directory {root} is not writable ({e.strerror or e}); set EFFBENCH_CACHE to a writable directory"
        ) from None
    return root


class NotCached(Exception):
    """Raised by get_or_build inside `cached_only()` when the artifact would have to be built."""


_CACHED_ONLY = contextvars.ContextVar("effbench_cached_only", default=False)


@contextlib.contextmanager
def cached_only():
    """Within: nothing is built; a missing artifact raises NotCached (a sweep prepares cached cells
    here, then builds the rest apart)."""
    token = _CACHED_ONLY.set(True)
    try:
        yield
    finally:
        _CACHED_ONLY.reset(token)


def building_allowed() -> bool:
    return not _CACHED_ONLY.get()


def key_of(fmt: str, parts: dict[str, Any]) -> str:
    """The cache key of an artifact of `fmt` made of `parts` (what get_or_build would store it under)."""
    return cache_key({**parts, "format": fmt})


def get_or_build(
    fmt: str, parts: dict[str, Any], filename: str, build: Callable[[Path], dict[str, Any] | None]
) -> Artifact:
    """Return the cached artifact for `parts`, or run `build(target_file)` and cache its output.

    `build` writes `filename` (and any side files) into the directory that holds `target_file`; the
    dict it may return is stored in meta.json."""
    key = key_of(fmt, parts)
    final_dir = cache_root() / "artifacts" / key
    meta_path = final_dir / "meta.json"
    if meta_path.is_file() and (final_dir / filename).is_file():
        meta = json.loads(meta_path.read_text())
        return Artifact(
            fmt,
            final_dir / filename,
            key,
            True,
            meta.get("export_s", 0.0),
            dir_size(final_dir) - meta_path.stat().st_size,
            meta,
        )
    if not building_allowed():
        raise NotCached(key)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final_dir.parent))
    try:
        t0 = time.perf_counter()
        info = build(tmp / filename) or {}
        export_s = time.perf_counter() - t0
        meta = {
            **info,
            "key": key,
            "format": fmt,
            "parts": parts,
            "export_s": export_s,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(tmp, final_dir)
        except OSError:  # another process finished the same artifact first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
            meta = json.loads(meta_path.read_text())
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    size = dir_size(final_dir) - (final_dir / "meta.json").stat().st_size
    return Artifact(fmt, final_dir / filename, key, False, export_s, size, meta)
