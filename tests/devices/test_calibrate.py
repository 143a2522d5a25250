"""Calibration on this machine's CPU, and recording the results in a devices file."""

import re
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from effbench.commands.devices import app
from effbench.devices.calibrate import calibrate, save_calibration
from effbench.devices.catalog import DEFAULT_FILE, load_catalog
from effbench.devices.detect import cpu_info, detect_cpu
from effbench.errors import UsageError

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone


@pytest.fixture(scope="module")
def results():
    return calibrate("cpu", seconds=1, precisions=("fp32",))


def plausible_ceiling(precision: str) -> float:
    """The detected peak when its clock is the CPU's maximum; with only a nominal clock (VMs report
    the TSC rate, not the boost), the same derivation at 5 GHz, which no x86 core's vector units pass."""
    info = cpu_info()
    detected = detect_cpu().peak(precision, "spec")
    return 1.05 * detected if info.clock_is_max else detected * 5.0 / info.ghz


def test_cpu_gemm_is_positive_and_below_the_detected_peak(results):
    measured = results["peak_flops"]["fp32"]["value"]
    # Both are plausible only if the measurement stays under the derived peak.
    assert 0 < measured <= plausible_ceiling("fp32"), (measured, plausible_ceiling("fp32"))
    gemm = results["details"]["gemm"]["fp32"]
    assert gemm["n"] in (512, 1024, 2048, 4096) and gemm["runs"] >= 6
    assert measured == pytest.approx(2 * gemm["n"] ** 3 / gemm["seconds_per_gemm"])
    assert results["peak_flops"]["fp32"]["source"].startswith("calibrated: torch.matmul fp32")


def test_cpu_bandwidth_is_plausible(results):
    bw = results["memory_bandwidth"]["value"]
    assert 0.5e9 < bw < 1e12, bw
    details = results["details"]["bandwidth"]
    assert details["array_mib"] >= 64 and details["copy_bytes_per_s"] > 0.5e9
    assert "3 x 8 bytes" in results["memory_bandwidth"]["source"]


@pytest.mark.skipif("bf16" not in cpu_info().rates, reason="no bf16 instructions on this CPU")
def test_cpu_bf16_gemm_below_the_detected_peak():
    measured = calibrate("cpu", seconds=0.6, precisions=("bf16",))["peak_flops"]["bf16"]["value"]
    assert 0 < measured <= plausible_ceiling("bf16")


def test_save_and_load_round_trip(results, tmp_path):
    path = tmp_path / "devices.yaml"
    shutil.copy(DEFAULT_FILE, path)
    for _ in range(2):  # saving again replaces the block
        assert save_calibration("local-cpu", results, path) == path
    text = path.read_text()
    assert text.startswith("# effbench device catalog.")  # comments kept
    assert len(re.findall(r"^ +calibrated:$", text, re.M)) == 1
    spec = load_catalog(path)["local-cpu"]
    fp32 = results["peak_flops"]["fp32"]["value"]
    assert spec.peak("fp32", "calibrated") == fp32 == spec.peak("fp32", "best")
    assert spec.peak("fp32", "spec") == detect_cpu().peak("fp32", "spec")
    assert spec.bandwidth("calibrated") == results["memory_bandwidth"]["value"] == spec.bandwidth("best")
    assert spec.bandwidth("spec") is None
    assert spec.calibrated.timestamp == results["timestamp"] and spec.origin == "calibrated"
    # everything else is untouched
    before, after = (yaml.safe_load(p.read_text())["devices"] for p in (DEFAULT_FILE, path))
    assert {k: v for k, v in after.items() if k != "local-cpu"} == {k: v for k, v in before.items() if k != "local-cpu"}


def test_save_adds_a_missing_device_and_handles_flow_style(results, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("# my devices\ndevices:\n  toy:\n    kind: npu\n    peak_flops: {int8: 1.0e+12}\n")
    save_calibration("local-cpu", results, path)
    catalog = load_catalog(path)
    assert list(catalog) == ["toy", "local-cpu"] and catalog["local-cpu"].detect
    assert path.read_text().startswith("# my devices")
    flow = tmp_path / "flow.yaml"
    flow.write_text("devices: {local-cpu: {kind: cpu, detect: true}}\n")
    save_calibration("local-cpu", results, flow)
    assert load_catalog(flow)["local-cpu"].bandwidth() == results["memory_bandwidth"]["value"]


def test_calibrate_rejects_bad_requests():
    import torch

    with pytest.raises(UsageError, match="expected cpu, cuda"):
        calibrate("tpu")
    with pytest.raises(UsageError, match="int8"):
        calibrate("cpu", precisions=("int8",))
    with pytest.raises(UsageError, match="positive"):
        calibrate("cpu", seconds=0)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            calibrate("cuda")


def test_cli_calibrate_saves(tmp_path):
    path = tmp_path / "devices.yaml"
    shutil.copy(DEFAULT_FILE, path)
    result = CliRunner().invoke(
        app, ["calibrate", "--seconds", "0.5", "--precision", "fp32", "--save", "--devices-file", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "peak fp32" in result.stdout and "memory bandwidth" in result.stdout and "saved" in result.stdout
    assert load_catalog(path)["local-cpu"].peak("fp32", "calibrated") > 0
    result = CliRunner().invoke(app, ["calibrate", "--device", "tpu", "--devices-file", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
