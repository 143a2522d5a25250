"""The fork server's protocol: started before the harness knows its cells' runtimes, told to import
them with a preload message that may arrive together with the next cell, and still one cell at a time."""

from __future__ import annotations

import sys

import pytest

from effbench.core.cell import Measured
from effbench.harness.config import RunConfig
from effbench.harness.forkserver import ForkServer
from effbench.harness.launchers.local import Workers
from effbench.harness.prepare import check_cell, prepare

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server runs on Linux only")


@pytest.fixture(scope="module")
def null_cell():
    return prepare(check_cell(RunConfig(model="efficientvit_m0", backend="null", warmup_s=0.0, duration_s=0.05)))


def _measure(workers: Workers, cell) -> Measured:
    answer, outcome, _ = workers.measure(cell.payload(), 60, True, lambda msg: None)
    assert outcome is None and answer is not None and answer["event"] == "result", outcome
    return Measured.from_dict(answer["measured"])


def test_preloads_sent_with_the_next_cell_are_imported_before_that_cell_forks(null_cell):
    server = ForkServer()
    workers = Workers(server=server)
    try:
        # no wait between the messages: on a byte stream the two preloads would arrive as one read
        server.preload(("csv",))
        server.preload(("torch",))
        first = _measure(workers, null_cell)
        second = _measure(workers, null_cell)  # the same server forks again after the first exit
    finally:
        workers.close()
    assert first.imported["torch"] is True and second.imported["torch"] is True
    assert len(first.samples_ns) > 0 and len(second.samples_ns) > 0


def test_a_server_without_that_preload_forks_workers_without_it(null_cell):
    workers = Workers()
    try:
        assert _measure(workers, null_cell).imported["torch"] is False
    finally:
        workers.close()
