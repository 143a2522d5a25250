"""ExecuTorch sessions: a .pte program run by ExecuTorch's Python runtime (XNNPACK kernels for the
delegated partitions, portable kernels for the rest).

Threads: the runtime's thread pool is sized once, before the first program is loaded; resizing it
after a program was loaded and then loading another in the same process crashed (abort, segfault,
a futex hang). effbench runs one cell per worker process, so the first load is the cell's.
Placement: placement.json beside the .pte (written at export) says where each node runs.
Per-op times: ETDump events read by ExecuTorch's Inspector (with the ETRecord beside the .pte).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Optional

import numpy as np

from .. import placement
from ..session import CoreError, Session, first_line
from ..settings import MeasureSettings
from .executorch_profile import profile_rows

FLOAT = 6  # ExecuTorch's ScalarType::Float
_loaded = [False]  # a program was loaded in this process: the thread pool must not be resized now


def version() -> Optional[str]:
    try:
        from importlib.metadata import version as dist_version

        return dist_version("executorch")
    except Exception:
        return None


def probe() -> Dict[str, Any]:
    try:
        import executorch.extension.pybindings.portable_lib  # noqa: F401
    except ImportError as e:
        return {"missing": True, "pip": "executorch", "error": first_line(e)}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, first_line(e))}
    return {"version": version()}


def read_placement(path: str) -> Optional[Dict[str, Any]]:
    """The placement summary of the export's placement.json beside the .pte, with its op types."""
    side = os.path.join(os.path.dirname(path), "placement.json")
    if not os.path.isfile(side):
        return None
    with open(side) as f:
        data = json.load(f)
    requested = "XNNPACK" if data.get("delegate") == "xnnpack" else "portable kernels"
    rows = [tuple(row) for row in data.get("nodes") or []]
    out = placement.summarize(rows, requested, reasons=data.get("reasons") or {})
    out["ops"] = sorted({row[1] for row in rows})
    return out


@contextlib.contextmanager
def _stderr_to(sink):
    """File descriptor 2 (where C++ logs go) into `sink` for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class ExecuTorchSession(Session):
    def __init__(self, module, path: str, profiling: bool):
        super().__init__()
        self.module, self.path, self.profiling = module, path, profiling
        self._args: tuple = ()
        self._last: List[Any] = []
        self._graph: Optional[List[Dict[str, Any]]] = None

    def bind(self, inputs):
        import torch

        self._args = tuple(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in inputs.values())
        self._forward = self.module.forward

    def run(self):
        self._last = self._forward(self._args)

    def outputs(self):
        return [np.array(t.numpy(), copy=True) for t in self._last]

    def profile(self, iters):
        if not self.profiling:
            return None
        for _ in range(iters):
            self.run()
        workdir = tempfile.mkdtemp(prefix="effbench-etdump-")
        etdump = os.path.join(workdir, "run.etdp")
        self.module.write_etdump_result_to_file(etdump)
        record = os.path.join(os.path.dirname(self.path), "etrecord.bin")
        try:
            from executorch.devtools import Inspector

            inspector = Inspector(etdump_path=etdump, etrecord=record if os.path.isfile(record) else None)
        except Exception as e:
            self.runtime_info["profile_note"] = "ExecuTorch's Inspector could not read the ETDump: %s" % first_line(e)
            return None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        events = [ev for block in inspector.event_blocks if block.name == "Execute" for ev in block.events]
        layers, self._graph, execute_ms = profile_rows(events)
        if execute_ms is not None:
            self.runtime_info["profile_execute_ms"] = execute_ms
        self.runtime_info["profile_source"] = "ETDump + Inspector"
        return layers

    def runtime_graph(self):
        """The edge-graph ops behind the profiled kernels (core.runtimes.executorch_profile)."""
        return self._graph

    def close(self):
        self.module = None
        self._forward = None


def _first_call(module) -> None:
    """One call on zeros: the method is loaded, and its XNNPACK partitions compiled, only at its first
    call, where a node XNNPACK refuses would otherwise fail the timing loop as "error: 0x1"."""
    import torch

    meta = module.method_meta("forward")
    inputs = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
    if all(t.dtype() == FLOAT for t in inputs):
        module.forward(tuple(torch.zeros(list(t.sizes()), dtype=torch.float32) for t in inputs))


def _root_cause(said: List[str]) -> str:
    """The runtime's log, first (deepest) cause first: '[XNNCompiler.cpp:1262] Failed to create
    StaticConstantPad node 133 ...' then the backend's and the method's 0x1; the first failure, its
    source location dropped, and the unit it came from."""
    causes = [ln for ln in said if "fail" in ln.lower() or "error" in ln.lower()]
    first = causes[0] if causes else said[-1]
    where = first[1 : first.index("]")].split(".")[0] if first.startswith("[") and "]" in first else ""
    text = first.split("] ", 1)[1] if where else first
    unit = "XNNPACK" if where.startswith("XNN") else where
    return "%s: %s" % (unit, text) if unit else text


def open_session(path: str, settings: MeasureSettings) -> ExecuTorchSession:
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        raise CoreError("missing_runtime", "executorch not installed", packages=["executorch"]) from None
    threads_note = None
    if settings.threads and portable_lib._threadpool_get_thread_count() != int(settings.threads):
        if _loaded[0]:
            threads_note = "thread pool kept at %d: it cannot be resized once a program was loaded in this process" % (
                portable_lib._threadpool_get_thread_count()
            )
        else:
            portable_lib._unsafe_reset_threadpool(int(settings.threads))
    profiling = bool(settings.profile_iters)
    log = tempfile.TemporaryFile()
    try:
        with _stderr_to(log):  # the runtime says why a program does not load only in its C++ log
            module = portable_lib._load_for_executorch(str(path), enable_etdump=profiling)
            module.method_names()  # the program is parsed lazily: this is where a bad file fails
            _first_call(module)
    except Exception as e:
        log.seek(0)
        said = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
        reason = _root_cause(said) if said else first_line(e)
        raise CoreError("load_failed", "ExecuTorch could not load %s: %s" % (path, reason)) from None
    finally:
        log.close()
    _loaded[0] = True
    session = ExecuTorchSession(module, str(path), profiling)
    summary = read_placement(str(path))
    precisions: Dict[str, int] = {}
    for u in (summary or {}).get("units", {}).values():
        for p, n in u["precisions"].items():
            precisions[p] = precisions.get(p, 0) + n
    session.precision_ran = "int8" if precisions.get("int8") else "fp32"
    session.runtime_info = {
        "runtime": "executorch.extension.pybindings.portable_lib",
        "threadpool": portable_lib._threadpool_get_thread_count(),
    }
    if summary is not None:
        session.runtime_info["ops"] = summary.pop("ops")
        session.runtime_info["placement"] = summary
        session.runtime_info["delegated_share"] = round(1.0 - summary["fallback_share"], 4)
    if threads_note:
        session.runtime_info["threads_note"] = threads_note
    return session
