"""Ctrl-C (and SIGTERM, which `bench` turns into the same stop) held back while a result is being
written, so it cannot land between "measured" and "stored"."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending = threading.Event()


def pending() -> bool:
    """A Ctrl-C is being held back: a write still in progress should stop waiting (and spool)."""
    return _pending.is_set()


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held; one that arrived meanwhile is delivered when it ends,
    to whichever handler was in place (KeyboardInterrupt for SIGINT by default). Outside the main
    thread, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []

    def hold(signum, frame) -> None:
        caught.append((signum, frame))
        _pending.set()

    previous = {s: signal.signal(s, hold) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(s, handler)
        _pending.clear()
        if caught:
            signum, frame = caught[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                signal.raise_signal(signum)  # what it would have done: end the process
