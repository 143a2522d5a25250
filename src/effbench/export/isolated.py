"""Exports that run in a fresh (spawned) process, quietly: litert-torch and ai-edge-quantizer import JAX,
whose threads make any later fork of the exporting process unsafe; ExecuTorch's runtime starts a thread
pool; and a converter that crashes takes only its own process down."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from effbench.core.lifeline import SpawnedPool
from effbench.errors import RunFailed

_OP = re.compile(r"(aten[.:]+\w+(?:\.\w+)?|torch\.ops\.\w+\.\w+)")


def refused(e: BaseException) -> str:
    """One line: the operator the converter refused when its message names one, else its first line."""
    text = str(e).strip() or type(e).__name__
    op = _OP.search(text)
    first = next((ln for ln in text.splitlines() if ln.strip()), type(e).__name__)[:200]
    return f"operator {op.group(1)} ({first})" if op else first


@contextlib.contextmanager
def quiet():
    """litert-torch's progress lines and the converter's C++ log (written to file descriptors 1 and 2,
    where redirecting sys.stdout cannot reach) stay out of the CLI's output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("litert_torch").setLevel(logging.ERROR)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a fresh (spawned) process, which dies with this one; its exceptions come back as
    raised there."""
    try:
        with SpawnedPool() as pool:
            return pool.submit(fn, *args).result()
    except BrokenProcessPool:
        raise RunFailed(f"the exporting process died ({getattr(fn, '__name__', fn)})") from None
