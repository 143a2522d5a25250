"""Artifact directories on a device: content hashes, and a tar stream received atomically."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tarfile
from typing import Dict

from .session import CoreError, first_line

HASHES_FILE = ".effbench-hashes.json"  # written by the harness into each transfer


def file_hashes(root: str) -> Dict[str, str]:
    """{relative posix path: sha256} of every regular file under root (HASHES_FILE excluded)."""
    root = os.path.expanduser(root)
    out: Dict[str, str] = {}
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == HASHES_FILE or not os.path.isfile(full):
                continue
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[rel] = h.hexdigest()
    return out


def receive(dest: str, stream=None) -> Dict[str, object]:
    """Extract a tar stream (stdin by default) into dest, replacing what was there, after checking
    every file against the HASHES_FILE inside the stream."""
    stream = stream or sys.stdin.buffer
    dest = os.path.abspath(os.path.expanduser(dest))
    tmp = "%s.part-%d" % (dest, os.getpid())
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in name.split("/") or not (member.isfile() or member.isdir()):
                    raise CoreError("bad_transfer", "refusing tar member %r" % name)
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, tmp, filter="data")
                else:
                    tar.extract(member, tmp)
        expected_path = os.path.join(tmp, HASHES_FILE)
        if not os.path.isfile(expected_path):
            raise CoreError("bad_transfer", "transfer has no %s" % HASHES_FILE)
        with open(expected_path) as f:
            expected = json.load(f)
        got = file_hashes(tmp)
        if got != expected:
            bad = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
            raise CoreError("bad_transfer", "files differ from what was sent after the copy: %s" % ", ".join(bad[:5]))
        old = dest + ".old-%d" % os.getpid()
        if os.path.exists(dest):
            os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            # another copy of the same artifact landed first (two runs to one device): keep it if good
            if file_hashes(dest) != expected:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(old):
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise CoreError("disk_full", "No space left on device while writing %s" % dest) from None
        raise CoreError("io_error", "%s: %s" % (dest, e)) from None
    except tarfile.TarError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CoreError("bad_transfer", "broken tar stream: %s" % first_line(e)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"received": dest, "files": len(got)}
