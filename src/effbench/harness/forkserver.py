"""A fork server: a process that imports the harness's measuring code and the runtimes once, then
forks one fresh worker per cell. Each cell still runs in its own process (its own crash, its own
memory peak) without paying Python's start-up and the runtimes' imports every time.

Protocol on a Unix socket: the harness sends one JSON line (the payload) with two descriptors
attached (SCM_RIGHTS): the pipe the worker answers on and the file its stderr goes to. The server
forks, answers {"pid": N}, waits for the worker and answers {"exit": status}. One cell at a time.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys

MAX_MESSAGE = 1 << 22


def _recv(sock: socket.socket) -> tuple[dict, list[int]] | None:
    msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 2)
    if not msg:
        return None
    return json.loads(msg.decode()), list(fds)


def _child(payload: dict, result_fd: int, stderr_fd: int, control: socket.socket) -> None:
    control.close()
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


def serve_forever(control: socket.socket) -> None:
    while True:
        got = _recv(control)
        if got is None:
            return
        payload, fds = got
        result_fd, stderr_fd = fds
        pid = os.fork()
        if pid == 0:
            _child(payload, result_fd, stderr_fd, control)
        os.close(result_fd)
        os.close(stderr_fd)
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        control.sendall(json.dumps({"exit": code}).encode() + b"\n")


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    for module in argv[1:]:  # what every worker needs: imported once, shared copy-on-write
        try:
            importlib.import_module(module)
        except Exception:  # a runtime that does not import fails its cells with the reason, not the server
            pass
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
