"""Sweeps that survive crashes, hangs, a killed parent, and bad files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effbench.harness.store import Store
from tests.conftest import PLUGIN_ENV, bench

SIX_CELLS = """
models: [efficientvit_m0]
backends: [null]
batches: [1, 2, 3, 4, 5, 6]
duration_s: 1.0
warmup_s: 0.05
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _start_sweep(sweep: Path, db: str, output, stored: int):
    """Start `bench sweep` in the background and wait until `stored` cells are in the store."""
    exe = str(Path(sys.executable).parent / "bench")
    proc = subprocess.Popen([exe, "sweep", str(sweep), "--db", db], stdout=output, stderr=output, text=True)
    store = Store(db)
    deadline = time.time() + 120
    while time.time() < deadline and len(store.records()) < stored:
        time.sleep(0.2)
    return proc, store


def test_crash_and_hang_are_recorded_and_the_sweep_goes_on(tmp_path, db):
    sweep = _write(
        tmp_path / "s.yaml",
        """
models: [efficientvit_m0]
backends: [abort, hang, null]
duration_s: 0.2
warmup_s: 0.05
min_iters: 5
timeout_s: 8
""",
    )
    r = bench("sweep", sweep, "--db", db, env=PLUGIN_ENV)
    assert r.returncode == 0, r.output
    recs = {x["backend"]: x for x in Store(db).records()}
    assert set(recs) == {"abort", "hang", "null"}
    assert recs["abort"]["status"] == "crashed"
    assert "SIGABRT" in recs["abort"]["error"]
    assert recs["hang"]["status"] == "timeout" and "8 s" in recs["hang"]["error"]
    assert recs["null"]["status"] == "ok" and recs["null"]["iterations"] >= 5
    assert "crashed" in r.stdout and "timeout" in r.stdout


def test_killed_parent_leaves_readable_store_and_resume_finishes_the_rest(tmp_path, db):
    sweep = _write(tmp_path / "s.yaml", SIX_CELLS)
    proc, store = _start_sweep(sweep, db, subprocess.DEVNULL, stored=2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = store.records()
    assert 2 <= len(done_before) < 6, "kill landed too late to test resuming"
    assert all(rec["status"] == "ok" for rec in done_before)
    r = bench("sweep", sweep, "--db", db, "--resume")
    assert r.returncode == 0, r.output
    assert f"{len(done_before)} already stored" in r.stdout
    after = Store(db).records()
    hashes = [rec["config_hash"] for rec in after]
    assert len(after) == 6 and len(set(hashes)) == 6  # the missing cells, no duplicates
    assert sorted(rec["batch_size"] for rec in after) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "text,needles",
    [
        ("models: [a]\n", ["backends", "field required"]),
        ("models: [efficientvit_m0]\nbackends: [null]\nbatches: [1, x]\n", ["batches[1]", "integer"]),
        ("models: [efficientvit_m0]\nbackends: [null]\nduration_s: -1\n", ["duration_s", "greater than 0"]),
        ("models: [efficientvit_m0]\nbackends: [null]\nwarmup_seconds: 1\n", ["warmup_seconds", "extra"]),
        ("models: [a\n", ["not valid YAML", "line"]),
        ("- just\n- a list\n", ["mapping"]),
    ],
)
def test_malformed_sweep_file_is_one_line(tmp_path, text, needles, db):
    path = _write(tmp_path / "bad.yaml", text)
    r = bench("sweep", path, "--db", db)
    assert r.returncode == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]


def test_missing_sweep_file(tmp_path, db):
    r = bench("sweep", tmp_path / "nope.yaml", "--db", db)
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.parametrize(
    "sig,code,said", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_ctrl_c_or_sigterm_stops_after_recording_and_prints_how_to_resume(tmp_path, db, sig, code, said):
    """SIGTERM (kill, timeout, a CI runner) stops a sweep the way Ctrl-C does."""
    sweep = _write(tmp_path / "s.yaml", SIX_CELLS)
    proc, store = _start_sweep(sweep, db, subprocess.PIPE, stored=1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, out + err
    assert [ln for ln in err.splitlines() if ln.strip()] == [f"error: {said}"]
    assert "resume with: bench sweep" in out and "--resume" in out
    n = len(store.records())
    assert n < 6, "the interrupt landed after the sweep had finished"
    assert f"{n} cell(s) finished and stored" in out  # what it says it kept is what the store holds
    assert "Traceback" not in out + err
