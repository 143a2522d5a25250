"""MLPerf LoadGen's scenarios through the real LoadGen (mlcommons-loadgen) with the null backend's
busy-waiting session as the system under test: short runs (about 2 s each), VALID where the
settings allow it, INVALID with LoadGen's reason where they do not, the log folder kept."""

from __future__ import annotations

import os

import pytest

from effbench.backends.null_backend import NullSession
from effbench.core.scenarios import SCENARIOS, run_scenario
from effbench.core.scenarios.loadgen import EARLY_STOPPING_MIN_QUERIES, read_detail, results_of
from effbench.core.settings import MeasureSettings
from tests.conftest import FAST, one_line, read_records

pytestmark = pytest.mark.serial  # LoadGen's validity depends on the machine keeping up


def _settings(tmp_path, scenario: str, **kw) -> MeasureSettings:
    base = dict(
        runtime="null",
        input_shape=[1, 3, 8, 8],
        warmup_s=0.0,
        warmup_iters=2,
        duration_s=1.0,
        min_iters=1,
        scenario=scenario,
        loadgen_dir=str(tmp_path / scenario),
    )
    base.update(kw)
    return MeasureSettings(**base)


def test_the_four_scenarios_are_registered():
    assert {"singlestream", "multistream", "server", "offline"} <= set(SCENARIOS)


def test_singlestream_is_valid_with_its_early_stopping_estimate_and_keeps_its_logs(tmp_path):
    m = run_scenario(NullSession(500_000), _settings(tmp_path, "singlestream"))
    lg = m.summary["loadgen"]
    assert lg["valid"] and lg["result_validity"] == "VALID" and lg["early_stopping_met"], m.notes
    assert lg["result_query_count"] >= EARLY_STOPPING_MIN_QUERIES["singlestream"]
    assert lg["early_stopping_estimate_ms"] >= lg["percentiles_ms"]["p50"] >= 0.5  # the busy-wait is 0.5 ms
    assert m.samples_ns.size == lg["result_query_count"] and m.samples_ns.min() >= 500_000
    assert m.summary["settings"]["scenario"] == "SingleStream" and m.summary["settings"]["min_duration_ms"] == 1000
    logs = os.listdir(m.summary["log_dir"])
    assert "mlperf_log_detail.txt" in logs and "mlperf_log_summary.txt" in logs
    assert results_of(read_detail(os.path.join(m.summary["log_dir"], "mlperf_log_detail.txt"))) == lg


def test_a_run_too_short_for_early_stopping_is_invalid_and_says_so(tmp_path):
    # 10 ms per query and at most 0.3 s: about 30 queries, fewer than the 64 early stopping needs
    m = run_scenario(NullSession(10_000_000), _settings(tmp_path, "singlestream", duration_s=0.2, max_duration_s=0.3))
    assert not m.summary["loadgen"]["valid"]
    assert any("INVALID" in n and "too few queries" in n for n in m.notes), m.notes


def test_server_at_a_modest_rate_meets_its_bound_and_an_impossible_rate_does_not(tmp_path):
    ok = run_scenario(
        NullSession(200_000), _settings(tmp_path, "server", target_qps=400.0, latency_bound_ms=100.0, duration_s=1.0)
    )
    lg = ok.summary["loadgen"]
    assert lg["valid"], ok.notes
    assert lg["result_query_count"] >= 662 and ok.summary["settings"]["target_latency_ns"] == 100_000_000
    assert lg["percentiles_ms"]["p99"] < 100
    # 2 ms per query offered at 1500 QPS: three times what one worker can serve
    bad = run_scenario(
        NullSession(2_000_000),
        _settings(
            tmp_path, "server", loadgen_dir=str(tmp_path / "bad"), target_qps=1500.0, latency_bound_ms=5.0,
            duration_s=0.5, max_duration_s=0.5,
        ),
    )  # fmt: skip
    assert not bad.summary["loadgen"]["valid"]
    assert any("latency bound was not met" in n for n in bad.notes), bad.notes


def test_server_without_a_target_rate_takes_one_from_a_short_latency_run_and_says_so(tmp_path):
    m = run_scenario(NullSession(1_000_000), _settings(tmp_path, "server", max_duration_s=1.0, duration_s=0.5))
    rate = m.summary["settings"]["target_qps"]
    assert 100 < rate < 600  # half of at most 1000 per second
    assert any(n.startswith("no --target-qps: server target") for n in m.notes), m.notes


def test_offline_and_multistream(tmp_path):
    off = run_scenario(NullSession(100_000), _settings(tmp_path, "offline", target_qps=10_000.0))
    assert off.summary["loadgen"]["valid"], off.notes
    assert off.summary["loadgen"]["result_samples_per_second"] > 0
    assert off.samples_ns.size == off.summary["inferences"] >= 10_000  # offline keeps inference times
    ms = run_scenario(NullSession(50_000), _settings(tmp_path, "multistream", samples_per_query=2))
    assert ms.summary["settings"]["samples_per_query"] == 2
    assert ms.summary["inferences"] == 2 * ms.summary["loadgen"]["result_query_count"]


NULL = ["--model", "efficientvit_m0", "--backend", "null"]


def test_bench_run_stores_loadgen_results_and_the_log_folder(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli(
        "run", *NULL, "--opt", "busy_us=300", "--scenario", "singlestream", *FAST, "--duration", "1",
        "--in-process", "--no-store", "-o", out, env={"EFFBENCH_STATE": str(tmp_path / "state")},
    )  # fmt: skip
    assert r.returncode == 0, r.output
    rec = read_records(out)[0]
    s = rec["extra"]["scenario"]
    assert rec["scenario"] == "singlestream" and s["loadgen"]["valid"]
    assert s["log_dir"].startswith(str(tmp_path / "state" / "loadgen"))
    assert os.path.isfile(os.path.join(s["log_dir"], "mlperf_log_detail.txt"))


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--scenario", "server", "--target-qps", "0"], ["--target-qps", "greater than 0"]),
        (["--scenario", "server", "--target-qps", "-5"], ["--target-qps", "greater than 0"]),
        (["--scenario", "server", "--latency-bound", "0ms"], ["--latency-bound", "positive"]),
        (["--scenario", "server", "--latency-bound", "-3"], ["--latency-bound", "positive"]),
        (["--scenario", "multistream", "--samples-per-query", "0"], ["--samples-per-query"]),
    ],
)
def test_bad_loadgen_input_is_one_line_and_exit_2(cli, args, needles):
    one_line(cli("run", *NULL, *args, "--no-store"), 2, *needles)


def test_loadgen_is_refused_on_an_ssh_device_before_any_work(cli, tmp_path):
    devices = tmp_path / "devices.yaml"
    devices.write_text("devices:\n  pi5:\n    kind: cpu\n    ssh:\n      host: pi@pi5.local\n")
    r = cli(
        "run", *NULL, "--device", "pi5", "--scenario", "server", "--no-store", env={"EFFBENCH_DEVICES": str(devices)}
    )
    one_line(r, 2, "--scenario server on device 'pi5'", "ssh agent", "aarch64")
