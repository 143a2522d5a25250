"""The on-device agent: this package (shipped as is) plus this entry point.

    python -m <package>.agent --probe [--workdir DIR]      what this device has
    python -m <package>.agent --hashes DIR [--require RT]  sha256 of every file under DIR
    python -m <package>.agent --receive DIR                a tar stream on stdin, checked, put at DIR
    python -m <package>.agent --run                        one JSON line on stdin: {"artifact", "settings"},
                                                           then the input as .npy; measures, answers

Every answer is one JSON line on stdout (protocol.py); progress lines come before it. Exit code 3
means the answer is an error.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import shutil
import sys
import threading
from typing import Any, Dict

from . import files, protocol
from .fingerprint import fingerprint
from .runtimes import RUNTIMES, open_session, runtime_module
from .session import CoreError, first_line
from .settings import MeasureSettings

AGENT_VERSION = "2"
EXIT_ERROR = 3


def _require(runtime: str) -> None:
    """A missing numpy or runtime is one clear error naming the packages, before any copy."""
    import importlib.util
    import platform

    if runtime == "coreml" and platform.system() != "Darwin":
        raise CoreError(
            "unsupported",
            "Core ML needs macOS (Core ML runs only on Apple platforms); this device runs %s" % platform.system(),
        )
    pip = RUNTIMES[runtime][1]
    # a distribution's import name: ai-edge-litert is the module ai_edge_litert
    missing = [dist for dist in (pip, "numpy") if importlib.util.find_spec(dist.replace("-", "_")) is None]
    if missing:
        raise CoreError(
            "missing_runtime",
            "%s not installed for %s" % (" and ".join(missing), sys.executable),
            packages=missing,
            python=sys.executable,
        )
    info = runtime_module(runtime).probe()
    if info.get("missing"):
        raise CoreError(
            "missing_runtime",
            "%s not installed for %s" % (info.get("pip"), sys.executable),
            packages=[info.get("pip")],
            python=sys.executable,
        )
    if info.get("usable") is False:
        raise CoreError("unsupported", info.get("why", "%s cannot run here" % runtime))
    if info.get("error"):
        raise CoreError("broken_runtime", "%s is installed but does not import: %s" % (runtime, info["error"]))


def probe(workdir=None):
    np_info: Dict[str, Any]
    try:
        import numpy

        np_info = {"version": numpy.__version__}
    except ImportError:
        np_info = {"missing": True, "pip": "numpy"}
    runtimes = {}
    for name in RUNTIMES:
        try:
            runtimes[name] = runtime_module(name).probe()
        except ImportError as e:  # the core's runtime modules need numpy
            runtimes[name] = {"missing": True, "pip": RUNTIMES[name][1], "error": first_line(e)}
    out = {
        "protocol": protocol.PROTOCOL,
        "agent": AGENT_VERSION,
        "env": fingerprint(),
        "runtimes": runtimes,
        "numpy": np_info,
    }
    if workdir:
        path = os.path.abspath(os.path.expanduser(workdir))
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        out["workdir"] = os.path.abspath(os.path.expanduser(workdir))
        out["disk_free_gib"] = round(shutil.disk_usage(path).free / 2**30, 2)
    return out


def _run(chan: protocol.Channel):
    import numpy as np

    from .cell import measure_cell

    request = json.loads(sys.stdin.buffer.readline())
    settings = MeasureSettings.from_dict(request["settings"])
    _require(settings.runtime)
    artifact = os.path.expanduser(request["artifact"])
    if not os.path.exists(artifact):
        raise CoreError("bad_artifact", "artifact not found on the device: %s" % artifact)
    try:
        x = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
    except Exception as e:
        raise CoreError("bad_input", "cannot read the input .npy: %s" % first_line(e)) from None
    if list(x.shape) != list(settings.input_shape):
        raise CoreError("bad_input", "input has shape %s, expected %s" % (list(x.shape), settings.input_shape))
    measured = measure_cell(
        lambda: open_session(settings.runtime, artifact, settings),
        settings,
        {request.get("input_name", "input"): x},
        chan.progress,
    )
    return dict(measured.to_dict(), runtime_version=runtime_module(settings.runtime).version())


def _arm_deadline(seconds: float, chan: protocol.Channel) -> None:
    def fire():
        try:
            chan.error("timeout", "measurement stopped by the agent's deadline, %.0f s after it started" % seconds)
        finally:
            os._exit(124)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="effbench-agent", description="effbench's on-device agent")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--probe", action="store_true")
    mode.add_argument("--hashes", metavar="DIR")
    mode.add_argument("--receive", metavar="DIR")
    mode.add_argument("--run", action="store_true")
    p.add_argument("--workdir")
    p.add_argument("--require", choices=sorted(RUNTIMES))
    p.add_argument("--deadline", type=float)
    args = p.parse_args(argv)
    chan = protocol.Channel(claim_stdout=True)
    if args.deadline:
        _arm_deadline(args.deadline, chan)
    try:
        if args.probe:
            answer = probe(args.workdir)
        elif args.hashes:
            if args.require:
                _require(args.require)
            answer = {"files": files.file_hashes(args.hashes)}
        elif args.receive:
            answer = files.receive(args.receive)
        else:
            answer = _run(chan)
    except CoreError as e:
        chan.error(e.kind, e.message, **e.extra)
        return EXIT_ERROR
    except MemoryError:
        chan.error("out_of_memory", "out of memory on the device")
        return EXIT_ERROR
    except OSError as e:
        kind = "disk_full" if e.errno == errno.ENOSPC else "io_error"
        chan.error(kind, "%s: %s" % (type(e).__name__, first_line(e)))
        return EXIT_ERROR
    except Exception as e:  # a runtime's own failure: named, never a traceback on the wire
        chan.error("run_failed", "%s: %s" % (type(e).__name__, first_line(e)))
        return EXIT_ERROR
    chan.send(dict(answer, event="result", protocol=protocol.PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
