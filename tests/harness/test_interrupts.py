"""A Ctrl-C that lands while a result is being written: the result is stored, then the interrupt is delivered.

Each case runs in a fresh interpreter: a Ctrl-C is a process-level event, and a pytest worker that has
run hundreds of tests (thread pools, runtimes, fork servers) is not the process a user interrupts.
"""

import json
import signal
import subprocess
import sys

import pytest

STORE_WRITE = """
import json, os, signal, sys
from effbench.harness.sink import ResultSink
from effbench.harness.result import Result
from effbench.harness.store import Store

class InterruptedStore(Store):  # a real SQLite store that receives SIGINT in the middle of every write
    def add(self, result):
        os.kill(os.getpid(), signal.SIGINT)
        return super().add(result)

db = sys.argv[1]
sink = ResultSink(None, InterruptedStore(db), "t")
try:
    sink(Result(model="m", backend="null", config_hash="h1"))
    interrupted = False
except KeyboardInterrupt:
    interrupted = True
print(json.dumps({"interrupted": interrupted, "stored": [r["config_hash"] for r in Store(db).records()],
                  "counted": len(sink.records), "spooled": len(sink.spooled)}))
"""

HANDLER = """
import json, os, signal, sys
from effbench.harness.interrupts import deferred_interrupt

seen = []
sig = int(sys.argv[1])

def handler(signum, frame):
    seen.append(signum)

signal.signal(sig, handler)
with deferred_interrupt():
    os.kill(os.getpid(), sig)
    held = list(seen)
print(json.dumps({"held": held, "after": seen, "restored": signal.getsignal(sig) is handler}))
"""


def _run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_ctrl_c_during_the_store_write_keeps_the_result_and_the_count(tmp_path):
    out = _run(STORE_WRITE, str(tmp_path / "results.db"))
    assert out["interrupted"]  # the Ctrl-C is not swallowed
    assert out["stored"] == ["h1"]
    assert out["counted"] == 1 and out["spooled"] == 0  # what the sweep says it stored is what is stored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_the_interrupt_goes_to_the_handler_that_was_in_place(sig):
    """SIGTERM too: `bench` turns it into the same stop as Ctrl-C (cli.py), so it is held alike."""
    out = _run(HANDLER, str(int(sig)))
    assert out["held"] == []  # held while the block runs
    assert out["after"] == [sig]  # then delivered, once, to the handler that was there
    assert out["restored"]
