"""Latency / throughput scenarios, adaptive stopping, threads and pinning, through real runtimes."""

import os

import pytest

from tests.conftest import FAST, bench, read_records

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_throughput_scenario_uses_runtime_concurrency(backend, tmp_path, db):
    out = tmp_path / "r.json"
    r = bench(
        "run",
        "--model",
        "mobilenetv3_small_050",
        "--backend",
        backend,
        "--scenario",
        "throughput",
        "--batch",
        "1,4",
        *FAST,
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 0, r.output
    recs = read_records(out)
    assert [x["batch_size"] for x in recs] == [1, 4]
    for rec in recs:
        assert rec["scenario"] == "throughput" and rec["status"] == "ok"
        assert rec["runtime"]["requests_in_flight"] >= 2
        assert rec["throughput_per_s"] > 0
        assert rec["latency_ms"]["median"] > 0 and len(rec["samples_ms"]) == rec["iterations"]
        # each request carries `batch` images: throughput can't exceed in-flight requests / latency
        bound = rec["runtime"]["requests_in_flight"] * rec["batch_size"] * 1000 / rec["latency_ms"]["min"]
        assert rec["throughput_per_s"] <= bound * 1.05
    if backend == "openvino":
        assert recs[0]["runtime"]["performance_hint"] == "THROUGHPUT"


def test_adaptive_stopping_reaches_target_on_stable_backend(tmp_path, db):
    out = tmp_path / "r.json"
    r = bench(
        "run",
        "--model",
        "efficientvit_m0",
        "--backend",
        "null",
        "--opt",
        "busy_us=100",
        "--duration",
        "0.2",
        "--warmup",
        "0.1",
        "--target-ci",
        "0.5%",
        "--max-duration",
        "20",
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    st = rec["stability"]
    assert st["target_ci"] == pytest.approx(0.005)
    assert st["reached_ci"] <= 0.005 and st["unstable"] is False


def test_unreachable_target_is_marked_unstable(tmp_path, db):
    out = tmp_path / "r.json"
    # a real runtime's latencies vary continuously: no CI of a few hundred samples gets this narrow
    r = bench(
        "run",
        "--model",
        "mobilenetv3_small_050",
        "--backend",
        "ort",
        "--duration",
        "0.1",
        "--warmup",
        "0",
        "--target-ci",
        "0.000001%",
        "--max-duration",
        "0.5",
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["stability"]["unstable"] is True
    assert any("unstable" in w for w in rec["warnings"])
    assert rec["extra"]["measure_s"] < 5


def test_cpu_pinning_is_applied_and_recorded(tmp_path, db):
    cpu = sorted(os.sched_getaffinity(0))[-1]
    out = tmp_path / "r.json"
    r = bench(
        "run", "--model", "efficientvit_m0", "--backend", "null", *FAST, "--cpus", str(cpu), "--db", db, "--out", out
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["cpus"] == [cpu] and rec["env"]["affinity"] == [cpu]


def test_memory_figures_belong_to_the_worker(tmp_path, db):
    out = tmp_path / "r.json"
    r = bench("run", "--model", "efficientvit_m0", "--backend", "ort", *FAST, "--db", db, "--out", out)
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    mem = rec["memory"]
    assert mem["peak_rss_mb"] > 50
    assert mem["load_delta_mb"] > 0
    assert mem["peak_covers"] == "load + run"
    assert mem["artifact_bytes"] == rec["artifact_bytes"]
