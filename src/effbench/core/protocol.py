"""The wire format between a measuring process (worker, agent, farm task) and the harness: JSON
lines, numpy arrays as base64 .npy. Progress lines are {"event": "progress", ...}; the answer is
{"event": "result", ...} or {"event": "error", "kind": ..., "message": ...}."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
from typing import Any, Dict, Optional

import numpy as np

PROTOCOL = 2


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(o), allow_pickle=False)
        return {"__npy__": base64.b64encode(buf.getvalue()).decode("ascii")}
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _hook(d: Dict[str, Any]) -> Any:
    if len(d) == 1 and "__npy__" in d:
        return np.load(io.BytesIO(base64.b64decode(d["__npy__"])), allow_pickle=False)
    return d


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text, object_hook=_hook)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


class Channel:
    """JSON lines to a file descriptor of their own. With `claim_stdout`, fd 1 is pointed at stderr
    first, so whatever a runtime prints cannot corrupt the protocol."""

    def __init__(self, fd: Optional[int] = None, claim_stdout: bool = False) -> None:
        if fd is None and claim_stdout:
            try:
                sys.stdout.flush()
                fd = os.dup(1)
                os.dup2(2, 1)
                sys.stdout = sys.stderr
            except OSError:  # no real descriptors (embedded use): write where we can
                fd = None
        self._out = os.fdopen(fd, "w", buffering=1) if fd is not None else sys.stdout
        self._last = 0.0

    def send(self, obj: Dict[str, Any]) -> None:
        self._out.write(dumps(obj) + "\n")
        self._out.flush()

    def progress(self, phase: str, fraction: float, detail: str) -> None:
        now = time.monotonic()
        if fraction in (0.0, 1.0) or now - self._last > 0.2:
            self._last = now
            self.send({"event": "progress", "phase": phase, "fraction": round(float(fraction), 3), "detail": detail})

    def error(self, kind: str, message: str, **extra: Any) -> None:
        self.send(dict(extra, event="error", kind=kind, message=message))
