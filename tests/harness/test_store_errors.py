"""Store errors are told apart by the driver's code, never by the text: a read-only store spools at
once even when the record says "busy"; a locked one is waited for a bounded time, said on stderr;
a Ctrl-C while waiting spools and names the spool file and the import command."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from effbench.harness import store_errors
from effbench.harness.result import Result
from effbench.harness.store import Store, save_or_spool

# a record whose SQL text holds "busy" (the null backend's option, a warning) as real ones do
BUSY_WORDS = {"config": {"options": {"busy_us": 50}}, "warnings": ("other processes busy",)}


def _result() -> Result:
    return Result(model="m", backend="null", **BUSY_WORDS)


def test_a_read_only_store_spools_at_the_first_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    Store(str(path))
    monkeypatch.setenv("EFFBENCH_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("EFFBENCH_STORE_WAIT", "60")
    store = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    t0 = time.monotonic()
    where, spooled, why = save_or_spool(store, _result())
    assert time.monotonic() - t0 < 20  # not the 60 s a busy store would be waited for
    assert where == "spool" and spooled is not None and "read-only" in (why or "")
    assert json.loads(spooled.read_text())["model"] == "m"


def test_a_locked_store_is_waited_for_within_the_budget_then_spooled(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.db"
    store = Store(str(path))
    monkeypatch.setenv("EFFBENCH_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("EFFBENCH_STORE_WAIT", "3")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        t0 = time.monotonic()
        where, spooled, why = save_or_spool(store, _result())
        waited = time.monotonic() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 3 <= waited < 3 + store_errors.SQLITE_BUSY_TIMEOUT_S + 10
    assert where == "spool" and spooled is not None and "locked by another writer" in (why or "")
    assert "waiting:" in capsys.readouterr().err
    store.add(_result())  # released: the store takes records again


def test_a_lock_released_while_waiting_stores_the_result(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    store = Store(str(path))
    monkeypatch.setenv("EFFBENCH_STORE_WAIT", "60")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(2.0, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        where, _, _ = save_or_spool(store, _result())
    finally:
        release.join()
        holder.close()
    assert where == "store" and len(store.records()) == 1


def test_other_errors_are_not_busy_whatever_their_text():
    from sqlalchemy.exc import OperationalError

    ro = sqlite3.OperationalError("attempt to write a readonly database (database is busy?)")
    ro.sqlite_errorcode = 8
    busy = sqlite3.OperationalError("some text")
    busy.sqlite_errorcode = 5 | (2 << 8)  # an extended SQLITE_BUSY code
    assert not store_errors.is_busy(OperationalError("INSERT ... busy_us", {}, ro))
    assert store_errors.is_busy(OperationalError("INSERT ...", {}, busy))


@pytest.mark.serial
def test_ctrl_c_while_waiting_for_a_locked_store_names_the_spool_file(tmp_path):
    db, spool = tmp_path / "r.db", tmp_path / "spool"
    env = dict(os.environ, EFFBENCH_SPOOL=str(spool), EFFBENCH_STORE_WAIT="300")
    args = ["run", "--model", "efficientvit_m0", "--backend", "null", "--duration", "2", "--warmup", "0"]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "bench"), *args, "--opt", "busy_us=50", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    guard = threading.Timer(120, proc.kill)
    guard.start()
    holder = None
    try:
        while holder is None:  # the store is open (its schema written) before the cell is measured
            time.sleep(0.1)
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute("SELECT count(*) FROM effbench_schema").fetchone()[0]:
                        holder = sqlite3.connect(db, isolation_level=None)
                        holder.execute("BEGIN EXCLUSIVE")
            except sqlite3.Error:
                pass
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "waiting:" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        guard.cancel()
        if holder is not None:
            holder.close()
    err = "".join(seen) + err
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    (spooled,) = spool.glob("*.jsonl")
    assert str(spooled) in err and f"bench results import {spooled}" in err
    assert json.loads(spooled.read_text())["status"] == "ok"


def test_postgresql_errors_are_told_apart_by_their_class():
    pg = pytest.importorskip("psycopg.errors", reason="psycopg 3 not installed (pip install 'effbench[farm]')")
    from sqlalchemy.exc import OperationalError

    assert store_errors.is_busy(OperationalError("UPDATE ...", {}, pg.LockNotAvailable("busy")))
    assert store_errors.is_busy(OperationalError("UPDATE ...", {}, pg.DeadlockDetected("x")))
    assert not store_errors.is_busy(OperationalError("INSERT ... busy", {}, pg.ReadOnlySqlTransaction("busy")))
    assert not store_errors.is_busy(OperationalError("INSERT ... busy", {}, pg.DiskFull("busy")))
