"""A Ctrl-C that lands while a result is being written: the result is stored, then the interrupt is delivered."""

import os
import signal

import pytest

from effbench.cli import ResultSink
from effbench.harness.interrupts import deferred_interrupt
from effbench.harness.result import Result
from effbench.harness.store import Store


class InterruptedStore(Store):
    """A real SQLite store that receives SIGINT in the middle of every write."""

    def add(self, result):
        os.kill(os.getpid(), signal.SIGINT)
        return super().add(result)


def test_ctrl_c_during_the_store_write_keeps_the_result_and_the_count(tmp_path):
    store = InterruptedStore(str(tmp_path / "results.db"))
    sink = ResultSink(None, store, "t")
    with pytest.raises(KeyboardInterrupt):
        sink(Result(model="m", backend="null", config_hash="h1"))
    assert [r["config_hash"] for r in Store(str(tmp_path / "results.db")).records()] == ["h1"]
    assert len(sink.records) == 1 and not sink.spooled  # what the sweep says it stored is what is stored


def test_the_interrupt_goes_to_the_handler_that_was_in_place():
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            assert seen == []  # held while the block runs
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
