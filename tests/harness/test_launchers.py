"""The same cell through every launcher — in this process, in a worker process, and through the
agent on an ssh device (a real sshd on loopback) — gets every measurement option the same way."""

from __future__ import annotations

import pytest
import yaml

from effbench.harness.config import RunConfig
from effbench.harness.launchers.local import InProcess, Workers
from effbench.harness.launchers.ssh import Ssh
from effbench.harness.prepare import check_cell, prepare

MODEL = "mobilenetv3_small_050"


def _cells(devices_file: str, device: str):
    latency = dict(
        model=MODEL,
        backend="openvino",
        threads=1,
        warmup_s=0.05,
        warmup_iters=7,
        duration_s=20.0,
        min_iters=9,
        max_iters=25,
        target_ci=0.5,
        max_duration_s=30.0,
        options={"streams": "1"},
    )
    throughput = dict(
        model=MODEL,
        backend="openvino",
        scenario="throughput",
        threads=2,
        warmup_s=0.05,
        warmup_iters=3,
        duration_s=0.3,
        min_iters=6,
        requests=2,
        options={"streams": "2"},
    )
    return [RunConfig(**kw, device=device, devices_file=devices_file) for kw in (latency, throughput)]


@pytest.fixture(scope="module")
def three_ways(sshd, tmp_path_factory):
    devices = tmp_path_factory.mktemp("launchers") / "devices.yaml"
    devices.write_text(yaml.safe_dump({"devices": {"loop": {"kind": "cpu", "ssh": sshd.ssh_block()}}}))
    out = {}
    workers = Workers()
    try:
        for name, device, launcher in [
            ("in-process", "cpu", InProcess()),
            ("worker", "cpu", workers),
            ("agent", "loop", None),
        ]:
            results = []
            for cfg in _cells(str(devices), device):
                cell = prepare(check_cell(cfg))
                run = launcher or Ssh(cell.target.spec)
                results.append(run.run(cell, lambda msg: None))
            out[name] = results
    finally:
        workers.close()
    return out


def test_every_path_got_the_same_settings(three_ways):
    for i in range(2):
        settings = {name: results[i].extra["settings"] for name, results in three_ways.items()}
        assert all(r[i].status == "ok" for r in three_ways.values()), {n: r[i].error for n, r in three_ways.items()}
        reference = settings["in-process"]
        for name, got in settings.items():
            assert {k: v for k, v in got.items() if k != "device"} == {
                k: v for k, v in reference.items() if k != "device"
            }, name


def test_every_option_took_effect_on_every_path(three_ways):
    for name, (lat, tput) in three_ways.items():
        assert lat.iterations == 25, name  # --max-iters ended the 20 s window
        assert lat.timing.warmup_iters >= 7, name
        assert lat.stability["target_ci"] == 0.5 and lat.stability["reached_ci"] is not None, name
        assert lat.runtime["inference_num_threads"] == 1 and lat.runtime["num_streams"] == 1, name
        assert tput.runtime["requests_in_flight"] == 2 and tput.runtime["num_streams"] == 2, name
        assert tput.timing.measure_s >= 0.3 and tput.throughput_per_s > 0, name
        assert lat.parity.ok, name
    assert three_ways["agent"][0].runtime["remote"] is True
