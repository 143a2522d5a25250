"""Cells measured on this machine: in this process (--in-process), or each in a worker process of
its own, forked from the fork server where fork is safe (CPU cells on Linux), spawned otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from effbench.core.cell import Measured
from effbench.core.lifeline import child_env
from effbench.core.protocol import loads
from effbench.harness import failures
from effbench.harness.assemble import assemble
from effbench.harness.forkserver import BASE_PRELOAD, ForkServer, start_fork_server
from effbench.harness.launchers import Event
from effbench.harness.prepare import PreparedCell
from effbench.harness.result import Result

STDERR_TAIL = 2000


def outcome_to_result(
    cell: PreparedCell,
    answer: dict[str, Any] | None,
    outcome: dict[str, Any] | None,
    wall_s: float,
    remote: dict[str, Any] | None = None,
) -> Result:
    """The Result of a measuring process's answer ({"event": "result", "measured"} or an error)."""
    if answer is not None and answer.get("event") == "result":
        try:
            return assemble(cell, Measured.from_dict(answer["measured"]), wall_s, remote)
        except Exception as e:  # the assembly must never lose the cell: it becomes a failed record
            outcome = failures.classify(e)
    if outcome is None:
        outcome = (
            {k: answer[k] for k in ("status", "error", "extra") if k in answer}
            if answer
            else {"status": "crashed", "error": "the measuring process gave no answer", "extra": {}}
        )
    return failures.failed_result(
        cell.cfg.to_dict(), outcome, model=cell.model_id, backend=cell.backend, config_hash=cell.cfg.config_hash()
    )


class InProcess:
    """Measure in the harness's own process (no isolation: for debugging and tests)."""

    def run(self, cell: PreparedCell, on_event: Event) -> Result:
        from effbench.harness.child import measure_payload

        t0 = time.perf_counter()
        try:
            m = measure_payload(cell.payload(), lambda p, f, d: on_event({"phase": p, "fraction": f, "detail": d}))
        except Exception as e:
            return outcome_to_result(cell, None, failures.classify(e), time.perf_counter() - t0)
        return assemble(cell, m, time.perf_counter() - t0)

    def close(self) -> None:
        pass


class _Reader(threading.Thread):
    """Reads a worker's JSON lines: progress goes to `on_event`, the answer is kept."""

    def __init__(self, fd: int, on_event: Event):
        super().__init__(daemon=True)
        self.fd, self.on_event, self.answer = fd, on_event, None

    def run(self) -> None:
        with os.fdopen(self.fd, "r") as f:
            for line in f:
                try:
                    msg = loads(line)
                except ValueError:
                    continue
                if msg.get("event") in ("result", "error"):
                    self.answer = msg
                else:
                    try:
                        self.on_event(msg)
                    except Exception:
                        pass


def spawn_module(module: str, request: Any, write_fd: int, errfile) -> subprocess.Popen:
    """`python -m module WRITE_FD` in a session of its own (a timeout kills it and whatever it
    started), `request` as JSON on its stdin, its answers on write_fd, its stderr to errfile. The
    module calls die_with_parent() first: the caller's thread waits for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, str(write_fd)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=errfile,
        pass_fds=(write_fd,),
        env=child_env(dict(os.environ, PYTHONUNBUFFERED="1")),
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(request).encode())
    proc.stdin.close()
    return proc


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def fork_is_safe(cell: PreparedCell) -> bool:
    return fork_ok(cell.settings.device)


def fork_ok(device: str) -> bool:
    """CPU cells on Linux: CUDA must never be initialised in a process that forks, and macOS
    frameworks are not fork-safe."""
    return (
        sys.platform.startswith("linux") and not device.startswith("cuda") and os.environ.get("EFFBENCH_NO_FORK") != "1"
    )


class Workers:
    """Each cell in a fresh worker process; a crash, a hang or a leak stays with its cell."""

    def __init__(self, preload: tuple[str, ...] = (), server: ForkServer | None = None):
        """`server`: one started earlier (`start_fork_server`), which is sent `preload`."""
        self.preload = tuple(dict.fromkeys(BASE_PRELOAD + tuple(preload)))
        self.server = server
        self.server_failed = False
        if server is not None:
            server.preload(self.preload)

    def start_server(self) -> None:
        """Start the fork server now (its imports overlap whatever the harness does meanwhile)."""
        if self.server is None and not self.server_failed:
            self.server = start_fork_server(self.preload)
            self.server_failed = self.server is None

    def _server(self) -> ForkServer | None:
        self.start_server()
        if self.server is not None and not self.server.wait_ready():
            self.server.close()
            self.server, self.server_failed = None, True
        return self.server

    def run(self, cell: PreparedCell, on_event: Event) -> Result:
        answer, outcome, wall = self.measure(cell.payload(), cell.cfg.timeout_s, fork_is_safe(cell), on_event)
        return outcome_to_result(cell, answer, outcome, wall)

    def measure(
        self, payload: dict[str, Any], timeout: float, fork_ok: bool, on_event: Event
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, float]:
        """Measure a PreparedCell payload in a fresh worker: (its answer, or the outcome of a worker
        that gave none, and the wall time). A farm node calls this with the payload it was sent."""
        read_fd, write_fd = os.pipe()
        errfile = tempfile.TemporaryFile()
        reader = _Reader(read_fd, on_event)
        reader.start()
        t0 = time.perf_counter()
        server = self._server() if fork_ok else None
        try:
            if server is not None:
                code = self._run_forked(server, payload, write_fd, errfile, timeout)
            else:
                code = self._run_spawned(payload, write_fd, errfile, timeout)
        finally:
            os.close(write_fd)  # the reader sees the end of the answers once the worker's copy is gone too
        reader.join(timeout=10)
        wall = time.perf_counter() - t0
        errfile.seek(0)
        tail = errfile.read()[-STDERR_TAIL:].decode(errors="replace").strip()
        errfile.close()
        if reader.answer is not None:
            return reader.answer, None, wall
        return None, failures.timed_out(timeout, tail) if code is None else failures.crashed(code, tail), wall

    def _run_forked(self, server: ForkServer, payload: dict, write_fd: int, errfile, timeout: float) -> int | None:
        pid = server.start(payload, write_fd, errfile.fileno())
        try:
            code = server.wait_exit(timeout)
        except BaseException:  # Ctrl-C: take the worker down with us
            kill_group(pid)
            server.wait_exit(10)
            raise
        if code is None:
            kill_group(pid)
            server.wait_exit(10)
        return code

    def _run_spawned(self, payload: dict, write_fd: int, errfile, timeout: float) -> int | None:
        proc = spawn_module("effbench.harness.worker", payload, write_fd, errfile)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
            return None
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
