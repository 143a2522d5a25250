"""Artifacts shipped by content hash.

The submitting side packs an exported artifact's folder into one deterministic tar (sorted names,
no times or owners), so equal content gives equal bytes and one SHA-256. It puts those bytes into
Ray's object store once per hash and hands every task the reference nested in a list: Ray resolves
only top-level arguments, so a node fetches the bytes only when its own cache lacks the hash.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from effbench.errors import EffbenchError
from effbench.paths import cache_root

SKIP = {"meta.json"}  # the exporter's own bookkeeping, not part of the artifact


def pack(path: Path) -> bytes:
    """A folder's files (an artifact with its side files), or one file (an input batch)."""
    folder = path if path.is_dir() else path.parent
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in SKIP) if path.is_dir() else [path]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(file.relative_to(folder).as_posix())
            info.size, info.mode, info.mtime = file.stat().st_size, 0o644, 0
            with open(file, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


class Shipper:
    """Submitting side: one object-store copy per content hash for the whole sweep."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Any] = {}

    def ship(self, main_file: Path, whole_folder: bool = True) -> dict[str, Any]:
        """`main_file` with the rest of its folder (an artifact), or alone."""
        import ray

        data = pack(main_file.parent if whole_folder else main_file)
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._by_hash:
            self._by_hash[digest] = ray.put(data)
        return {"sha256": digest, "main": main_file.name, "bytes": len(data), "ref": [self._by_hash[digest]]}


def node_folder(digest: str) -> Path:
    return cache_root() / "farm" / digest


def materialize(shipped: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Node side: the artifact's main file in this node's content-addressed folder, fetched from
    the object store only on a cache miss and checked against its hash before use."""
    digest = shipped["sha256"]
    folder = node_folder(digest)
    main = folder / shipped["main"]
    info = {"sha256": digest, "bytes": shipped["bytes"], "fetched": False, "fetch_s": 0.0}
    if main.is_file():
        return main, info
    import ray

    t0 = time.perf_counter()
    data = ray.get(shipped["ref"][0])
    if hashlib.sha256(data).hexdigest() != digest:
        raise EffbenchError(f"artifact {digest[:12]} arrived corrupted (its hash differs): run the sweep again")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}.", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            _extract(tar, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another worker on this node unpacked the same hash first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info.update(fetched=True, fetch_s=round(time.perf_counter() - t0, 4))
    return main, info


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """Regular files inside `into` only: no absolute paths, links or '..'."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
        return
    for member in tar.getmembers():  # Python releases before the extraction filters
        if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
            raise EffbenchError(f"artifact member {member.name!r} is not a plain file inside the artifact")
    tar.extractall(into)
