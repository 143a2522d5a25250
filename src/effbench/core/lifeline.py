"""Child processes that die with the process that started them, even when it is killed outright
(SIGKILL, the OOM killer), so that nothing effbench starts is left running, re-parented to init.

Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) in the child; nothing runs meanwhile. The kernel sends the
signal when the *thread* that started the child ends, so a child is started by a thread that waits
for it (every launcher does). Elsewhere: a daemon thread that checks the parent once a second (it
sleeps between checks: a wake-up a second, a few microseconds each).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Mapping, Optional

PARENT_ENV = "EFFBENCH_PARENT_PID"
POLL_S = 1.0
_PR_SET_PDEATHSIG = 1


def child_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """`env` (default: ours) naming this process as the parent of a child that calls die_with_parent():
    a parent that dies before the child gets that far is seen as gone."""
    out = dict(os.environ if env is None else env)
    out[PARENT_ENV] = str(os.getpid())
    return out


def die_with_parent(parent: Optional[int] = None) -> None:
    """End this process (SIGKILL) when `parent` ends: a pid, by default the one child_env() named (read
    once: this process's own children do not inherit it), else the current parent."""
    named = os.environ.pop(PARENT_ENV, "")
    if parent is None:
        parent = int(named) if named.isdigit() else os.getppid()
    if not _death_signal():
        _watch(parent)
    if os.getppid() != parent:  # gone before we asked
        os.kill(os.getpid(), signal.SIGKILL)


def _death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, poll_s: float = POLL_S) -> None:
    """The portable fallback: a thread that sleeps, checks the parent, and ends us once it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="effbench-lifeline", daemon=True).start()


class SpawnedPool:
    """A ProcessPoolExecutor of spawned processes that die with this one; leaving its `with` block by
    an exception (a Ctrl-C, a SIGTERM) kills them rather than waiting for the task in hand."""

    def __init__(self, workers: int = 1):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )

    def submit(self, fn: Any, *args: Any) -> Any:
        return self.pool.submit(fn, *args)

    def close(self, abandon: bool = False) -> None:
        if abandon:
            # ProcessPoolExecutor.kill_workers() from Python 3.14 on; its process table before that
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                try:
                    proc.kill()
                except (OSError, ValueError):
                    pass
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SpawnedPool:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(abandon=exc_type is not None)
