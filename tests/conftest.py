import faulthandler
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.ssh_server import sshd  # noqa: F401  (a real sshd on loopback, for every test that asks)

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
# the test-only backends (tests/plugins/plugin_backends.py) as an installed plugin would register them
PLUGIN_ENV = {
    "PYTHONPATH": os.pathsep.join(
        [str(PLUGINS / "entrypoints"), str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
}
# above pytest-timeout's 600 s, which handles every hang that returns to Python
WATCHDOG_S = 900
FAST = ["--duration", "0.3", "--warmup", "0.1", "--warmup-iters", "3", "--min-iters", "5"]
# the three-layer CNN of tests/plugins/tiny_models.py at its own 32 px: a model that exports in seconds
TINY_CNN = ["--model", "tiny_models:tiny_cnn", "--input-size", "32"]


def export_tiny_onnx(path: Path) -> Path:
    """The tiny CNN as an ONNX file: 32 px, input `images`, a dynamic batch."""
    import torch
    from tiny_models import tiny_cnn

    torch.onnx.export(
        tiny_cnn().eval(),
        (torch.randn(1, 3, 32, 32),),
        str(path),
        dynamo=False,
        input_names=["images"],
        dynamic_axes={"images": {0: "n"}},
    )
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """One artifact cache for the whole session (exports are reused across tests), never the user's;
    shared by the pytest-xdist workers of one run (the cache's writes are atomic renames)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        cache = tmp_path_factory.getbasetemp().parent / "effbench-cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("effbench-cache")
    old = os.environ.get("EFFBENCH_CACHE")
    os.environ["EFFBENCH_CACHE"] = str(cache)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(PLUGINS))
    yield cache
    if old is None:
        os.environ.pop("EFFBENCH_CACHE", None)
    else:
        os.environ["EFFBENCH_CACHE"] = old


@pytest.fixture(autouse=True)
def _deadlock_watchdog():
    """pytest-timeout's alarm cannot interrupt C code that holds the GIL (a runtime's destructor
    joining its threads while one of them waits for the GIL); faulthandler's watchdog is a C thread:
    it prints every thread's stack and ends the process, so a deadlock fails its test (pytest-xdist
    replaces the worker) instead of stalling the run."""
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "results.db")


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def bench(*args, env: dict | None = None, timeout: float = 600, cwd=None, prefix: Sequence[str] = ()) -> CLIResult:
    """Run the real `bench` console script in a subprocess (behind `prefix`: a namespace, say)."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(
        [*prefix, str(Path(sys.executable).parent / "bench"), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    return CLIResult(proc)


def interrupt_when(proc: subprocess.Popen, ready, timeout: float = 120) -> tuple[str, str]:
    """A real Ctrl-C (SIGINT) to a running command once `ready()` holds; its (stdout, stderr). The
    command must still be running then, or there is nothing to interrupt."""
    import signal
    import time

    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, "the command finished before it could be interrupted"
            assert time.monotonic() < deadline, f"not ready to interrupt after {timeout:.0f} s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def read_records(path) -> list[dict]:
    return json.loads(Path(path).read_text())


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    """`bench ARGS` run by effbench.cli.main in this process (what the console script calls), so
    the catalog costs no interpreter start-ups; the cases that need a process of their own use
    tests.conftest.bench."""
    from effbench.cli import main

    def run(*args, env=None):
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # what the console script would exit with
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def one_line(r, code: int, *needles: str) -> str:
    assert r.returncode == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
