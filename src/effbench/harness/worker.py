"""Run one cell in its own process.

The parent (`run_isolated`) starts `python -m effbench.harness.worker FD` with the configuration on
stdin; the worker writes JSON lines (progress events, then the result) to file descriptor FD, a pipe
of its own, so whatever a runtime prints on stdout cannot corrupt the protocol. A worker that
crashes, is killed or hangs past the timeout becomes a "crashed" / "timeout" record with its exit
code or signal and the tail of its stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

from effbench.harness.config import RunConfig
from effbench.harness.result import Result, failed_result

STDERR_TAIL = 2000


def _main(fd: int) -> int:
    out = os.fdopen(fd, "w", buffering=1)

    def send(obj: dict) -> None:
        out.write(json.dumps(obj, default=str) + "\n")
        out.flush()

    cfg_dict = json.loads(sys.stdin.read())
    if cfg_dict.get("cpus"):
        os.sched_setaffinity(0, cfg_dict["cpus"])  # before any runtime starts its thread pool
    from effbench.errors import EffbenchError
    from effbench.harness.runner import run_cell

    cfg = RunConfig(**cfg_dict)
    last = [0.0]

    def event(phase: str, frac: float, detail: str) -> None:
        now = time.monotonic()
        if frac in (0.0, 1.0) or now - last[0] > 0.2:
            last[0] = now
            send({"event": "progress", "phase": phase, "fraction": frac, "detail": detail})

    try:
        result = run_cell(cfg, event)
    except EffbenchError as e:
        status = "skipped" if getattr(e, "exit_code", 1) == 2 else "failed"
        result = failed_result(cfg.to_dict(), status, str(e), config_hash=cfg.config_hash())
    except Exception as e:  # a runtime's own error: recorded, never a lost sweep
        import traceback

        tb = traceback.format_exc(limit=-3)
        result = failed_result(cfg.to_dict(), "failed", f"{type(e).__name__}: {e}".splitlines()[0][:500],
                               config_hash=cfg.config_hash(), extra={"traceback": tb})
    send({"event": "result", "record": result.to_dict()})
    return 0


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def run_isolated(cfg: RunConfig, on_event: Callable[[dict], None] | None = None,
                 timeout_s: float | None = None, python: str | None = None) -> Result:
    """Run `cfg` in a fresh worker process and return its record (always returns a Result)."""
    timeout_s = timeout_s or cfg.timeout_s
    read_fd, write_fd = os.pipe()
    errfile = tempfile.TemporaryFile()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "effbench.harness.worker", str(write_fd)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile, pass_fds=(write_fd,),
        env=env, start_new_session=True,
    )
    os.close(write_fd)
    proc.stdin.write(json.dumps(cfg.to_dict()).encode())
    proc.stdin.close()

    record: list[dict] = []

    def reader() -> None:
        with os.fdopen(read_fd, "r") as f:
            for line in f:
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if msg.get("event") == "result":
                    record.append(msg["record"])
                elif on_event:
                    on_event(msg)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
    except BaseException:  # Ctrl-C: take the worker down with us
        _kill_group(proc)
        raise
    t.join(timeout=5)
    errfile.seek(0)
    tail = errfile.read()[-STDERR_TAIL:].decode(errors="replace").strip()
    errfile.close()
    if record:
        return Result.from_dict(record[0])
    base = cfg.to_dict()
    if timed_out:
        return failed_result(base, "timeout", f"worker still running after {timeout_s:.0f} s (killed)",
                             config_hash=cfg.config_hash(), extra={"stderr_tail": tail})
    how = _describe_exit(proc.returncode)
    last = tail.splitlines()[-1] if tail else ""
    return failed_result(base, "crashed", f"worker {how}" + (f": {last}" if last else ""),
                         config_hash=cfg.config_hash(),
                         extra={"exit_code": proc.returncode, "stderr_tail": tail})


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1])))
