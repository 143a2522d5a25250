"""`bench max-qps`: the bracketing search (on a system whose p99 is a known function of the rate,
to check the arithmetic) and the command end to end through real LoadGen Server runs on the null
backend."""

from __future__ import annotations

import pytest

from effbench.harness.max_qps import Probe, probe_of, search
from tests.conftest import one_line, read_records

NULL = ["--model", "efficientvit_m0", "--backend", "null"]


def _system(capacity: float, calls: list):
    """Passes below `capacity` QPS: a stand-in for the probe runner, which is tested end to end below."""

    def run(qps):
        qps = 100.0 if qps is None else qps
        calls.append(qps)
        ok = qps <= capacity
        return qps, Probe(qps, ok, ok, 5.0 if ok else 50.0, None, qps, "" if ok else "p99 50 ms > 15 ms")

    return run


@pytest.mark.parametrize("capacity", [37.0, 100.0, 950.0])
def test_the_search_brackets_the_capacity_within_the_tolerance(capacity):
    calls: list = []
    found = search(_system(capacity, calls), 15.0, None, max_probes=20, tolerance=0.05)
    best = found.best
    assert best is not None and best.qps <= capacity < best.qps * 1.05
    assert found.stopped.startswith("bracketed") and len(calls) <= 12
    d = found.to_dict()
    assert d["max_qps"] == best.qps and [c["qps"] for c in d["curve"]] == sorted(calls)


def test_the_search_stops_at_the_probe_limit_and_says_so():
    found = search(_system(1e-3, []), 15.0, 64.0, max_probes=4, tolerance=0.05)
    assert found.best is None and len(found.probes) == 4 and "4 probes" in found.stopped
    assert [p.qps for p in found.probes] == [64.0, 32.0, 16.0, 8.0]


def test_a_probe_fails_when_invalid_or_over_the_bound():
    rec = {"status": "ok", "extra": {"scenario": {"loadgen": {"valid": True, "percentiles_ms": {"p99": 12.0}}}}}
    assert probe_of(rec, 50, 15).passed and not probe_of(rec, 50, 10).passed
    rec["extra"]["scenario"]["loadgen"]["valid"] = False
    assert "INVALID" in probe_of(rec, 50, 15).reason
    assert not probe_of({"status": "failed", "error": "boom"}, 50, 15).passed


@pytest.mark.serial
def test_bench_max_qps_prints_each_probe_and_stores_the_curve(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli(
        "max-qps", *NULL, "--p99", "100ms", "--start-qps", "300", "--max-probes", "2", "--in-process", "--no-store",
        "--run", "--opt busy_us=100 --duration 0.5 --warmup 0.1", "-o", out,
        env={"EFFBENCH_STATE": str(tmp_path / "state")},
    )  # fmt: skip
    assert "probe 1/2: 300 QPS" in r.stdout and "probe 2/2: 600 QPS" in r.stdout, r.output
    rec = read_records(out)[0]
    curve = rec["extra"]["max_qps"]["curve"]
    assert [c["qps"] for c in curve] == [300.0, 600.0] and all(c["p99_ms"] > 0 for c in curve)
    assert rec["scenario"] == "server" and rec["extra"]["max_qps"]["bound_ms"] == 100.0
    if r.returncode == 0:  # the busy machine let at least one rate pass
        assert rec["extra"]["max_qps"]["max_qps"] in (300.0, 600.0)
    else:
        assert r.returncode == 1 and "no probed rate met" in r.stderr


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--p99", "0ms"], ["--p99", "positive"]),
        (["--p99", "-5"], ["--p99", "positive"]),
        (["--p99", "15ms", "--start-qps", "0"], ["--start-qps", "positive"]),
        (["--p99", "15ms", "--tolerance", "150%"], ["--tolerance"]),
    ],
)
def test_bad_max_qps_input_is_one_line(cli, args, needles):
    one_line(cli("max-qps", *NULL, *args, "--no-store"), 2, *needles)
