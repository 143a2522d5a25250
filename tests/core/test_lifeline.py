"""A child that called die_with_parent() ends when its parent is killed outright (SIGKILL): through the
kernel's parent-death signal on Linux, and through the portable watcher thread. Real processes: a
parent that starts the child, then is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from effbench.core.lifeline import PARENT_ENV, SpawnedPool, child_env

# the parent: starts the child (which sets its lifeline, says so, then sleeps), prints the child's pid
PARENT = """
import subprocess, sys
from effbench.core.lifeline import child_env
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=child_env(), stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
child.wait()
"""
LINUX = "from effbench.core.lifeline import die_with_parent; die_with_parent()"
PORTABLE = (
    "import os; from effbench.core import lifeline; "
    "lifeline._watch(int(os.environ.pop(lifeline.PARENT_ENV)), poll_s=0.1)"
)
SLEEP = "; print('set', flush=True); import time; time.sleep(120)"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("lifeline", [LINUX, PORTABLE], ids=["death-signal", "watcher-thread"])
def test_the_child_ends_when_its_parent_is_killed(lifeline):
    if lifeline == LINUX and not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, lifeline + SLEEP], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.Process(child).ppid() == parent.pid
        parent.kill()
        parent.wait()
        assert _gone_within(child, 5.0), "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and not _gone_within(child, 0):
            os.kill(child, signal.SIGKILL)


def test_a_child_whose_parent_ended_before_it_asked_ends_at_once():
    """The parent named in the environment is not this child's parent any more (it ended, the child
    was re-parented): the child ends instead of running on as an orphan."""
    env = dict(os.environ, **{PARENT_ENV: str(os.getpid() + 10_000_000)})  # no such process
    r = subprocess.run([sys.executable, "-c", LINUX + SLEEP], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL and r.stdout == ""


def test_the_named_parent_is_read_once_so_grandchildren_do_not_inherit_it():
    code = "import os; from effbench.core.lifeline import die_with_parent, PARENT_ENV; die_with_parent(); "
    code += "print(os.environ.get(PARENT_ENV))"
    r = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"


def _pid_and_parent() -> str:
    return json.dumps([os.getpid(), os.getppid()])


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def test_a_spawned_pool_left_by_an_exception_kills_its_worker_instead_of_waiting():
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt), SpawnedPool() as pool:
        pid, parent = json.loads(pool.submit(_pid_and_parent).result())
        assert parent == os.getpid()
        pool.submit(_sleep, 120)
        raise KeyboardInterrupt  # what a Ctrl-C or a SIGTERM is in `bench`
    assert time.monotonic() - t0 < 60, "the pool waited for the task in hand"
    assert _gone_within(pid, 5.0)
