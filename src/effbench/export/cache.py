"""Content-addressed artifact cache.

Key: model id, weights hash, input shape, precision, exporter and library versions. A finished
artifact lives in `<cache>/artifacts/<key>/` with a `meta.json`; it is built in a temporary
directory and renamed into place, so a crash mid-export never leaves a half artifact behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def cache_root() -> Path:
    env = os.environ.get("EFFBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "effbench"


@dataclass
class Artifact:
    format: str  # "torch" | "onnx" | "openvino" | "coreml" | "tensorrt"
    path: Path | None  # main file (None for in-memory torch modules)
    key: str = ""
    cached: bool = False
    export_s: float = 0.0
    bytes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    obj: Any = None  # in-memory object (torch module)


def cache_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def get_or_build(fmt: str, parts: dict[str, Any], filename: str, build: Callable[[Path], None]) -> Artifact:
    """Return the cached artifact for `parts`, or run `build(target_file)` and cache its output.

    `build` writes `filename` (and any side files) into the directory that holds `target_file`.
    """
    key = cache_key({**parts, "format": fmt})
    final_dir = cache_root() / "artifacts" / key
    meta_path = final_dir / "meta.json"
    if meta_path.is_file() and (final_dir / filename).is_file():
        meta = json.loads(meta_path.read_text())
        return Artifact(fmt, final_dir / filename, key, True, meta.get("export_s", 0.0),
                        dir_size(final_dir) - meta_path.stat().st_size, meta)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final_dir.parent))
    try:
        t0 = time.perf_counter()
        build(tmp / filename)
        export_s = time.perf_counter() - t0
        meta = {"key": key, "format": fmt, "parts": parts, "export_s": export_s,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(tmp, final_dir)
        except OSError:  # another process finished the same artifact first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    size = dir_size(final_dir) - (final_dir / "meta.json").stat().st_size
    return Artifact(fmt, final_dir / filename, key, False, export_s, size, meta)
