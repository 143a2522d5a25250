"""Nothing `bench` starts outlives it: SIGTERM (kill, timeout, CI runners, systemd) stops it the way
Ctrl-C does (exit 143, one line, its workers stopped), and a worker dies with `bench` even when `bench`
is killed outright (SIGKILL). Real `bench` processes and their real workers, found through /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.predict.graphs import tiny_cnn

BENCH = str(Path(sys.executable).parent / "bench")
GONE_WITHIN_S = 10.0
# a cell whose worker sits in its 60 s cool-down: silent on its pipe, so only a stop can end it early
QUIET_CELL = ["run", "--model", "efficientvit_m0", "--backend", "null", "--duration", "0.2", "--cooldown", "60"]


class Watched:
    """A running `bench` and every descendant it was ever seen with (after it dies they are init's)."""

    def __init__(self, proc: subprocess.Popen, out: Path, err: Path):
        self.proc, self.out, self.err = proc, out, err
        self.seen: dict[int, psutil.Process] = {}

    def family(self) -> list[psutil.Process]:
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass
        return list(self.seen.values())

    def wait_for(self, ready: Callable[[list[psutil.Process]], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.family()):
            assert self.proc.poll() is None, f"bench ended before its worker was seen: {self.err.read_text()}"
            assert time.monotonic() < deadline, f"no worker after {timeout:.0f} s"
            time.sleep(0.05)
        time.sleep(0.3)  # past the worker's own start (its lifeline is set first thing)
        self.family()

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def alive_after(self, seconds: float) -> list[str]:
        """The descendants still running `seconds` after `bench` ended (a zombie has ended)."""
        deadline = time.monotonic() + seconds
        while True:
            alive = [p for p in self.seen.values() if _running(p)]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid} {' '.join(p.cmdline())[:200]}" for p in alive if _running(p)]
            time.sleep(0.1)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def watched(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Watched]:
    """`bench ARGS` with its state and cache in tmp_path; whatever it left running is killed after."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    full_env = dict(
        os.environ,
        EFFBENCH_STATE=str(tmp_path / "state"),
        EFFBENCH_CACHE=str(tmp_path / "cache"),
        **(env or {}),
    )
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([BENCH, *args], stdout=o, stderr=e, text=True, env=full_env)
    w = Watched(proc, out, err)
    try:
        yield w
    finally:
        w.family()
        if proc.poll() is None:
            proc.kill()
        for p in w.seen.values():
            if _running(p):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
        proc.wait(timeout=30)


def _named(part: str) -> Callable[[list[psutil.Process]], bool]:
    return lambda family: any(part in " ".join(_cmdline(p)) for p in family)


def _forked_worker(family: list[psutil.Process]) -> bool:
    """The fork server has forked a cell's worker."""
    return any("effbench.harness.forkserver" in " ".join(_cmdline(p)) and _children(p) for p in family)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return p.children()
    except psutil.Error:
        return []


def _one_terminated_line(w: Watched, code: int) -> None:
    err, out = w.err.read_text(), w.out.read_text()
    assert code == 128 + signal.SIGTERM, out + err
    assert "Traceback" not in out + err
    assert [ln for ln in err.splitlines() if ln.strip()] == ["error: terminated (SIGTERM)"]


def _ends_with_bench(
    args: list[str], tmp_path: Path, ready: Callable[[list[psutil.Process]], bool], sig: int, env: dict | None = None
) -> None:
    """`bench ARGS` sent `sig` once `ready`: nothing it started is left running within seconds, and
    a SIGTERM is exit 143 with one line."""
    with watched(args, tmp_path, env) as w:
        w.wait_for(ready)
        code = w.stop(sig)
        assert w.alive_after(GONE_WITHIN_S) == []
        if sig == signal.SIGTERM:
            _one_terminated_line(w, code)


SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])


@SIGNALS
def test_a_cell_worker_from_the_fork_server_ends_with_bench(tmp_path, sig):
    _ends_with_bench(QUIET_CELL + ["--db", str(tmp_path / "r.db")], tmp_path, _forked_worker, sig)


@SIGNALS
def test_a_spawned_cell_worker_ends_with_bench(tmp_path, sig):
    """Where forking is unsafe (CUDA, macOS) each cell's worker is spawned: the same holds."""
    args = QUIET_CELL + ["--db", str(tmp_path / "r.db")]
    _ends_with_bench(args, tmp_path, _named("effbench.harness.worker"), sig, {"EFFBENCH_NO_FORK": "1"})


HANGING = ["run", "--model", "tiny_models:hanging_model", "--backend", "ort"]


def test_the_process_that_reads_a_factorys_data_config_ends_with_bench(tmp_path):
    """A factory that never returns, called to read its declared input size (models/data_config.py)."""
    args = [*HANGING, "--db", str(tmp_path / "r.db")]
    _ends_with_bench(args, tmp_path, _named("effbench.models.data_config"), signal.SIGKILL)


@SIGNALS
def test_a_model_build_process_ends_with_bench(tmp_path, sig):
    """The same factory in its build process (harness/prepare_pool.py), once reading its data config
    has timed out (--timeout 3)."""
    args = [*HANGING, "--timeout", "3", "--db", str(tmp_path / "r.db")]
    _ends_with_bench(args, tmp_path, _named("effbench.harness.prepare_pool"), sig)


@SIGNALS
def test_the_predictor_builds_measuring_worker_ends_with_bench(tmp_path, sig):
    pytest.importorskip("openvino")
    zoo = [tiny_cnn(tmp_path / f"m{i}.onnx", channels=8 * (i + 1)) for i in range(4)]
    args = ["predictor", "build", "--zoo", ",".join(zoo), "--resolutions", "default", "--budget", "1"]
    _ends_with_bench(args, tmp_path, _named("multiprocessing.spawn"), sig)
