"""Ctrl-C held back while a result is being written, so it cannot land between "measured" and "stored"."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pending = threading.Event()


def pending() -> bool:
    """A Ctrl-C is being held back: a write still in progress should stop waiting (and spool)."""
    return _pending.is_set()


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held; a Ctrl-C that arrived meanwhile is delivered when it ends, to
    whichever handler was in place (KeyboardInterrupt by default). Outside the main thread, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []

    def hold(signum, frame) -> None:
        caught.append((signum, frame))
        _pending.set()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()
        if caught:
            if callable(previous):
                previous(*caught[0])
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt
