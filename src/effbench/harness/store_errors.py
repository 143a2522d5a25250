"""What a store error means, decided by the driver's error code, never by the message text (which
carries the SQL and the record being written: a record may well contain the word "busy").

Only a busy or locked database is worth waiting for, and only for a bounded time, said on stderr
while it lasts; a read-only, full, corrupt or foreign store fails at once (the result is spooled).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, TypeVar

from sqlalchemy.exc import DBAPIError

from effbench.console import err_console
from effbench.harness import interrupts

T = TypeVar("T")

# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xff)
SQLITE_BUSY, SQLITE_LOCKED = 5, 6
_SQLITE_WHY = {
    8: "the database is read-only",
    10: "a disk I/O error",
    11: "the database file is corrupt",
    13: "the disk is full",
    14: "the database file cannot be opened",
    26: "the file is not a database",
}
# PostgreSQL SQLSTATEs of psycopg's SerializationFailure, DeadlockDetected and LockNotAvailable
_PG_RETRY = {"40001", "40P01", "55P03"}
DEFAULT_WAIT_S = 60.0
SQLITE_BUSY_TIMEOUT_S = 1.0  # SQLite's own wait inside one attempt; the loop below bounds the total and says so


def _driver_error(e: BaseException) -> BaseException | None:
    return e.orig if isinstance(e, DBAPIError) else None


def sqlite_code(e: BaseException) -> int | None:
    code = getattr(_driver_error(e), "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(e: BaseException) -> bool:
    """A database another writer holds right now (worth waiting for)."""
    code = sqlite_code(e)
    if code is not None:
        return code in (SQLITE_BUSY, SQLITE_LOCKED)
    return getattr(_driver_error(e), "sqlstate", None) in _PG_RETRY


def why(e: BaseException) -> str | None:
    """What the error code says about the store, in words (None when it says nothing known)."""
    code = sqlite_code(e)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return "the database stayed locked by another writer"
    return _SQLITE_WHY.get(code) if code is not None else None


def wait_budget() -> float:
    """Seconds a busy store is waited for, in all ($EFFBENCH_STORE_WAIT, default 60)."""
    try:
        return max(0.0, float(os.environ.get("EFFBENCH_STORE_WAIT", DEFAULT_WAIT_S)))
    except ValueError:
        return DEFAULT_WAIT_S


def retry_busy(fn: Callable[[], T], where: str, budget: float | None = None) -> T:
    """fn(), again while the database is busy or locked, for at most `budget` seconds in all,
    saying so on stderr; any other error, a Ctrl-C waiting to be delivered, or the end of the
    budget: the error is raised."""
    budget = wait_budget() if budget is None else budget
    start = time.monotonic()
    said = -1.0
    attempt = 0
    while True:
        try:
            return fn()
        except DBAPIError as e:
            waited = time.monotonic() - start
            if not is_busy(e) or waited >= budget or interrupts.pending():
                raise
            if said < 0 or waited - said >= 10:
                err_console.print(
                    f"[yellow]waiting:[/] {where} is locked by another writer ({waited:.0f} s of at most "
                    f"{budget:.0f} s; EFFBENCH_STORE_WAIT sets the limit)",
                    highlight=False,
                    soft_wrap=True,
                )
                said = waited
            attempt += 1
            pause = min(2.0, 0.05 * 1.5**attempt) * (0.5 + random.random())
            time.sleep(max(0.0, min(pause, budget - waited)))


def describe(e: BaseException, redact: Callable[[str], str]) -> str:
    """One line for a store error: its meaning by code, then the driver's own words."""
    orig: Any = _driver_error(e) or e
    words = " ".join(str(orig).split())[:240] or type(orig).__name__
    meaning = why(e)
    return redact(f"{meaning} ({words})" if meaning else words)
