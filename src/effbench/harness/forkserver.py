"""A fork server: a process that imports the harness's measuring code and the runtimes once, then
forks one fresh worker per cell. Each cell still runs in its own process (its own crash, its own
memory peak) without paying Python's start-up and the runtimes' imports every time.

Protocol on a Unix SEQPACKET socket: the server answers {"ready": true} once it has imported what its
command line names. The harness sends one JSON message per cell (the payload) with two descriptors
attached (SCM_RIGHTS): the pipe the worker answers on and the file its stderr goes to. The server
forks, answers {"pid": N}, waits for the worker and answers {"exit": status}. One cell at a time.
A message {"preload": [modules]} with no descriptors imports more before the next cell (no answer):
the harness starts the server before it knows which runtimes its cells need.

This module is also the harness's side of it (ForkServer): standard library only, so that `bench run`
can start the server before its own imports.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import socket
import subprocess
import sys
import time

from effbench.core.lifeline import child_env, die_with_parent

MAX_MESSAGE = 1 << 22
BASE_PRELOAD = ("numpy", "effbench.harness.child", "effbench.harness.meters.energy")


class ForkServer:
    """The fork server process and its control socket, as the harness sees them."""

    def __init__(self, preload: tuple[str, ...] = BASE_PRELOAD):
        # SEQPACKET keeps messages apart: a preload message and the next payload may both be waiting
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "effbench.harness.forkserver", str(theirs.fileno()), *preload],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self._buf = b""
        self.ready = False
        self.preloaded = set(preload)

    def preload(self, modules: tuple[str, ...]) -> None:
        """Have the server import these too before it forks the next worker."""
        new = [m for m in dict.fromkeys(modules) if m not in self.preloaded]
        if new:
            self.sock.sendall(json.dumps({"preload": new}).encode())
            self.preloaded.update(new)

    def _message(self, timeout: float | None) -> dict | None:
        """The server's next JSON line; None on timeout or when it is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        if not self.ready:
            msg = self._message(timeout)
            self.ready = bool(msg and msg.get("ready"))
        return self.ready

    def start(self, payload: dict, result_fd: int, stderr_fd: int) -> int:
        socket.send_fds(self.sock, [json.dumps(payload).encode()], [result_fd, stderr_fd])
        msg = self._message(60)
        if not msg or "pid" not in msg:
            raise OSError("the fork server did not start the worker")
        return int(msg["pid"])

    def wait_exit(self, timeout: float | None) -> int | None:
        msg = self._message(timeout)
        return int(msg["exit"]) if msg and "exit" in msg else None

    def close(self) -> None:
        """The server exits when its socket closes; it is reaped later (or by init), not waited for."""
        try:
            self.sock.close()
        except OSError:
            self.proc.kill()


def start_fork_server(preload: tuple[str, ...] = BASE_PRELOAD) -> ForkServer | None:
    """A fork server importing `preload`, or None where there is none (not Linux, cannot start)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ForkServer(preload)
    except OSError:
        return None


def _recv(sock: socket.socket) -> tuple[dict, list[int]] | None:
    msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 2)
    if not msg:
        return None
    return json.loads(msg.decode()), list(fds)


def _child(payload: dict, result_fd: int, stderr_fd: int, control: socket.socket, server: int) -> None:
    control.close()
    die_with_parent(server)
    os.setsid()  # its own process group: a timeout kills the worker and whatever it started
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(stderr_fd, 2)
    code = 0
    try:
        from effbench.core.protocol import Channel
        from effbench.harness.child import serve

        serve(payload, Channel(result_fd))
    except BaseException:
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _import(modules: list[str]) -> None:
    for module in modules:  # what every worker needs: imported once, shared copy-on-write
        try:
            importlib.import_module(module)
        except Exception:  # a runtime that does not import fails its cells with the reason, not the server
            pass


def serve_forever(control: socket.socket) -> None:
    while True:
        got = _recv(control)
        if got is None:
            return
        payload, fds = got
        if "preload" in payload and not fds:
            _import(payload["preload"])
            continue
        result_fd, stderr_fd = fds
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(payload, result_fd, stderr_fd, control, server)
        os.close(result_fd)
        os.close(stderr_fd)
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        control.sendall(json.dumps({"exit": code}).encode() + b"\n")


def main(argv: list[str]) -> int:
    die_with_parent()  # and its workers die with it: nothing outlives `bench`, however it ends
    control = socket.socket(fileno=int(argv[0]))
    _import(argv[1:])
    try:
        from effbench.harness.child import warm

        warm()
    except Exception:
        pass
    control.sendall(b'{"ready": true}\n')
    serve_forever(control)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
