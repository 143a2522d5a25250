"""Farm commands check their addresses before starting Ray: an address that is not this host's, a
port already taken, a head that does not answer fail within seconds with one line, and leave no
process behind (counted inside the loopback-only namespace, where nothing else runs)."""

from __future__ import annotations

import sys
import time

import pytest

from tests.farm.lab import BENCH, Namespace


def _bench(ns: Namespace, tmp_path, *args):
    env = {"PATH": "/usr/bin:/bin", "EFFBENCH_STATE": str(tmp_path / "state"), "HOME": str(tmp_path)}
    t0 = time.monotonic()
    r = ns.run([BENCH, *args], timeout=60, env=env)
    return r, time.monotonic() - t0


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["farm", "start", "10.9.9.9:6379", "--background"], 2, "not an address of this host"),
        (["farm", "join", "127.0.0.1:6391", "--device", "local-cpu", "--background"], 1, "does not answer"),
        (
            ["farm", "join", "127.0.0.1:6391", "--node-ip", "10.9.9.9", "--device", "local-cpu"],
            2,
            "--node-ip 10.9.9.9 is not an address of this host",
        ),
    ],
)
def test_a_bad_address_fails_in_seconds_and_starts_nothing(netns, tmp_path, args, code, needle):
    before = set(netns.pids())  # the session's farm, when its tests ran first
    r, took = _bench(netns, tmp_path, *args)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code and len(lines) == 1 and needle in lines[0], r.stdout + r.stderr
    assert took < 30  # Ray's own start would wait 120 s
    assert set(netns.pids()) - before == set()  # no gcs_server, no raylet: nothing was started


def test_a_taken_head_port_is_refused_before_ray_starts(netns, tmp_path):
    listen = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 6392)); s.listen(); time.sleep(60)"
    holder = netns.popen([sys.executable, "-c", listen])
    try:
        probe = "import socket; socket.create_connection(('127.0.0.1', 6392), 1)"
        for _ in range(100):  # until it listens
            if netns.run([sys.executable, "-c", probe]).returncode == 0:
                break
            time.sleep(0.1)
        before = set(netns.pids())
        r, _ = _bench(netns, tmp_path, "farm", "start", "127.0.0.1:6392", "--background")
        assert r.returncode == 2 and "port 6392 on 127.0.0.1 is taken" in r.stderr, r.stderr
        assert set(netns.pids()) - before == set()
    finally:
        holder.kill()
        holder.wait()
