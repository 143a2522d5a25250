"""Building what cells need (the model, its export, quantisation, reference outputs, graph analysis)
in processes of their own, so that user code that crashes, raises or hangs becomes that cell's
record (`crashed` / `failed` / `timeout`) and never takes `bench` or the other cells with it.

One process per model (a model's ONNX export happens once), several models at a time where the
machine allows. The cells of one model are built one after another, each under its own --timeout;
after a crash or a timeout the cells not yet built get a fresh process. The process leaves its work in
the artifact cache; the harness then prepares the cells from the cache, building nothing itself.

Protocol: the harness writes the cells' configurations (a JSON list) on the process's stdin; the
process answers on the pipe it is given, one JSON line per event: {"start": k} before cell k and
{"done": k, "outcome": ...} after it: {"status": "built", "built": what the record keeps of the
build (export time, fresh or cached)}, or the cell's failure {"status", "error", "extra", "usage"}.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from effbench.core.lifeline import die_with_parent
from effbench.errors import UsageError
from effbench.harness import failures
from effbench.harness.config import RunConfig
from effbench.harness.launchers.local import STDERR_TAIL, kill_group, spawn_module
from effbench.harness.prepare import check_cell, prepare

Outcome = dict[str, Any]  # {"status": "built", "built": {...}} or a failure (failures.classify + "usage")
BUILT = "built"
BUILDER = "model build process"
_STARTUP_S = 120.0  # the process's own imports, before the first cell's timeout starts


class _Pool:
    def __init__(self) -> None:
        self.procs: set[subprocess.Popen] = set()
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def kill_all(self) -> None:
        self.stopped.set()
        with self.lock:
            for proc in self.procs:
                kill_group(proc.pid)

    def run_group(self, cells: list[RunConfig]) -> list[Outcome]:
        """The outcome of each cell of one model, in order."""
        outcomes: dict[int, Outcome] = {}
        while len(outcomes) < len(cells) and not self.stopped.is_set():
            todo = [k for k in range(len(cells)) if k not in outcomes]
            got = self._one_process([cells[k] for k in todo])
            for j, outcome in got.items():
                outcomes[todo[j]] = outcome
        stopped = {"status": "failed", "error": "interrupted before it was built", "extra": {}}
        return [outcomes.get(k, stopped) for k in range(len(cells))]

    def _one_process(self, cells: list[RunConfig]) -> dict[int, Outcome]:
        """Outcomes of the cells this process got to (at least the first, unless interrupted)."""
        read_fd, write_fd = os.pipe()
        errfile = tempfile.TemporaryFile()
        request = [c.to_dict() | {"db": None} for c in cells]
        try:
            proc = spawn_module("effbench.harness.prepare_pool", request, write_fd, errfile)
        finally:
            os.close(write_fd)
        with self.lock:
            self.procs.add(proc)
        try:
            outcomes, current, timed_out = _follow(read_fd, cells)
            if timed_out:
                kill_group(proc.pid)
            code = proc.wait()
        finally:
            os.close(read_fd)
            with self.lock:
                self.procs.discard(proc)
        if current is not None and current not in outcomes and not self.stopped.is_set():
            errfile.seek(0)
            tail = errfile.read()[-STDERR_TAIL:].decode(errors="replace").strip()
            timeout = cells[current].timeout_s
            outcomes[current] = (
                failures.timed_out(timeout, tail, BUILDER) if timed_out else failures.crashed(code, tail, BUILDER)
            )
        errfile.close()
        return outcomes


def _follow(fd: int, cells: list[RunConfig]) -> tuple[dict[int, Outcome], int | None, bool]:
    """Read the process's events: (outcomes, the cell in hand when it stopped, whether it timed out)."""
    outcomes: dict[int, Outcome] = {}
    current: int | None = 0
    deadline = time.monotonic() + _STARTUP_S + cells[0].timeout_s
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return outcomes, current, True
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return outcomes, current, False
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            msg = json.loads(line)
            if "start" in msg:
                current = int(msg["start"])
                deadline = time.monotonic() + cells[current].timeout_s
            else:
                outcomes[int(msg["done"])] = msg["outcome"]
                current = None


def build_in_processes(cells: list[RunConfig], groups: list[list[int]], workers: int) -> dict[int, Outcome]:
    """Build the cells of each group (indexes into `cells`, one group per model) in processes of
    their own, `workers` groups at a time: the outcome of every cell."""
    pool = _Pool()
    out: dict[int, Outcome] = {}
    with ThreadPoolExecutor(max(1, workers)) as threads:
        try:
            futures = [(g, threads.submit(pool.run_group, [cells[i] for i in g])) for g in groups]
            for group, future in futures:
                for i, outcome in zip(group, future.result()):
                    out[i] = outcome
        except BaseException:  # Ctrl-C: nothing is left building behind us (before the threads are joined)
            pool.kill_all()
            raise
    return out


def usage_error(outcome: Outcome) -> UsageError | None:
    """The bad-input error a cell's build reported (a factory that returns no module ...)."""
    return UsageError(outcome["error"]) if outcome.get("usage") else None


def _send(out, msg: dict[str, Any]) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def main(argv: list[str]) -> int:
    die_with_parent()
    cells = json.loads(sys.stdin.read())
    with os.fdopen(int(argv[0]), "w") as out:
        for k, data in enumerate(cells):
            _send(out, {"start": k})
            try:
                cell = prepare(check_cell(RunConfig.model_validate(data)))
                built = {
                    "artifact_cached": cell.artifact_cached,
                    "export_s": cell.export_s,
                    "prepare_s": cell.prepare_s,
                }
                _send(out, {"done": k, "outcome": {"status": BUILT, "built": built}})
            except Exception as e:  # the cell's record; the next cell is built all the same
                _send(out, {"done": k, "outcome": {**failures.classify(e), "usage": isinstance(e, UsageError)}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
