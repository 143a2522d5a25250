"""LiteRT and ExecuTorch on real runtimes (ai-edge-litert, executorch) with the tiny CNN: export through
the cache, delegate choice, int8, placement, --max-fallback, and bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest

from effbench.backends.registry import get_backend
from effbench.core.runtimes import open_session
from effbench.core.session import CoreError
from effbench.core.settings import MeasureSettings
from effbench.errors import UsageError
from effbench.harness.config import RunConfig
from effbench.harness.placement import fallback_verdict
from effbench.harness.prepare import check_cell, prepare
from tests.conftest import FAST, TINY_CNN, bench, read_records

EDGE = ("litert", "executorch")


def _session(backend: str, **cfg):
    cell = prepare(
        check_cell(RunConfig(model="tiny_models:tiny_cnn", backend=backend, input_size=32, threads=1, **cfg))
    )
    session = get_backend(backend).open(cell.artifact, cell.settings)
    session.bind({cell.input_name: np.load(cell.inputs_path)})
    session.run()
    return cell, session


@pytest.mark.parametrize("backend", EDGE)
def test_the_delegate_decides_where_every_op_runs(backend):
    cell, xnn = _session(backend)
    placement = xnn.runtime_info["placement"]
    assert placement["requested"] == "XNNPACK" and placement["fallback_share"] == 0.0
    assert placement["units"]["XNNPACK"]["macs"] == placement["macs"] > 0
    assert xnn.runtime_info["delegated_share"] == 1.0 and xnn.runtime_info["ops"]
    ref = xnn.outputs()[0]
    xnn.close()
    other, plain = _session(backend, options={"delegate": "none"})
    assert other.artifact.path != cell.artifact.path or backend == "litert"  # ExecuTorch lowers per delegate
    placement = plain.runtime_info["placement"]
    assert "XNNPACK" not in placement["units"] and placement["fallback_share"] == 0.0
    assert np.allclose(plain.outputs()[0], ref, rtol=1e-4, atol=1e-5)
    plain.close()


@pytest.mark.parametrize("backend", EDGE)
def test_an_unknown_delegate_names_the_close_match(backend):
    with pytest.raises(UsageError, match="did you mean 'xnnpack'"):
        get_backend(backend).parse_options({"delegate": "xnnpak"})


@pytest.mark.parametrize("backend,unit,basis", [("litert", "XNNPACK", "MACs"), ("openvino", "CPU", "nodes")])
def test_max_fallback_counts_what_ran_outside_the_requested_precision(backend, unit, basis):
    _, session = _session(backend)
    runtime = dict(session.runtime_info)
    session.close()
    assert fallback_verdict(runtime, "fp32", 0.0) == (None, None)
    error, _ = fallback_verdict(runtime, "int8", 50.0)  # everything ran in fp32
    assert error and error.startswith(f"100.0% of the {basis} ran outside {unit} int8, more than --max-fallback 50%")
    assert fallback_verdict({}, "fp32", 5.0)[1].startswith("--max-fallback: this backend reports no placement")


@pytest.mark.parametrize("backend,method", [("litert", "ai-edge-quantizer"), ("executorch", "xnnpack-pt2e")])
def test_int8_end_to_end(tmp_path, db, backend, method):
    from PIL import Image

    for label in ("0", "1"):  # an ImageFolder of two classes: top-1 on the timed int8 session
        (tmp_path / "val" / label).mkdir(parents=True)
        for i in range(3):
            pixels = np.random.default_rng(10 * int(label) + i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "val" / label / f"{i}.png")
    labels = tmp_path / "labels.txt"  # two folders for a 10-class model: say which output each one is
    labels.write_text("0 0\n1 1\n")
    out = tmp_path / "r.json"
    r = bench(
        "run", *TINY_CNN, "--backend", backend, "--precision", "int8", "--threads", "1", "--max-fallback", "0%",
        "--eval", tmp_path / "val", "--eval-labels", labels, *FAST, "--db", db, "--out", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["backend"] == backend and rec["status"] == "ok" and rec["precision_ran"] == "int8"
    assert rec["parity"]["ok"] and rec["quantization"]["method"] == method
    assert rec["quantization"]["int8_macs_share"] == 1.0
    assert rec["runtime"]["placement"]["units"]["XNNPACK"]["precisions"].get("int8", 0) >= 3
    assert rec["accuracy"]["images"] == 6 and 0 <= rec["accuracy"]["top1"] <= 100


@pytest.mark.slow
def test_executorch_int8_runs_a_pad_between_quantised_nodes(tmp_path, db):
    # efficientvit_m0's window padding: XNNPACK refused the int8 pad when the method loaded ("error: 0x1");
    # the exporter keeps the pad out of XNNPACK for int8, so the model runs
    out = tmp_path / "r.json"
    r = bench(
        "run", "--model", "tiny_models:window_pad", "--input-size", "14", "--backend", "executorch",
        "--precision", "int8", "--threads", "1", *FAST, "--db", db, "--out", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["status"] == "ok" and rec["precision_ran"] == "int8"
    units = rec["runtime"]["placement"]["units"]
    assert units["XNNPACK"]["precisions"].get("int8", 0) >= 2 and "portable kernels" in units
    pads = [f for f in rec["runtime"]["placement"]["fallback"] if f["op"] == "constant_pad_nd"]
    assert pads and all(f["why"].startswith("kept out of XNNPACK for int8") for f in pads)


def test_a_method_xnnpack_refuses_says_the_node_in_one_line():
    from effbench.core.runtimes.executorch import _root_cause

    log = [  # what ExecuTorch 1.5 logged for efficientvit_m0 int8 before the exporter kept pads out of XNNPACK
        "[threadpool.cpp:66] Resetting threadpool to 1 threads.",
        "[XNNCompiler.cpp:1262] Failed to create StaticConstantPad node 133 with code: xnn_status_invalid_parameter",
        "[XNNPACKBackend.cpp:143] XNNCompiler::compileModel failed: 0x1",
        "[method.cpp:128] Init failed for backend XnnpackBackend: 0x1",
    ]
    assert _root_cause(log) == (
        "XNNPACK: Failed to create StaticConstantPad node 133 with code: xnn_status_invalid_parameter"
    )


@pytest.mark.parametrize("backend", EDGE)
def test_a_file_the_runtime_cannot_read_is_one_line(tmp_path, backend):
    bad = tmp_path / ("model.tflite" if backend == "litert" else "model.pte")
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    settings = MeasureSettings(runtime=backend, input_shape=[1, 3, 32, 32], threads=1)
    with pytest.raises(CoreError) as e:
        open_session(backend, str(bad), settings)
    assert e.value.kind == "load_failed" and "\n" not in e.value.message and str(bad) in e.value.message


@pytest.mark.slow
def test_an_operator_the_converter_refuses_is_named(tmp_path, db):
    r = bench("run", "--model", "tiny_models:svd_model", "--input-size", "32", "--backend", "litert", "--db", db)
    assert r.returncode == 1
    line = next(ln for ln in r.stderr.splitlines() if "LiteRT conversion" in ln)
    assert "svd" in line.lower() and "Traceback" not in r.output


def test_executorch_says_why_a_node_fell_back_and_the_report_shows_it(tmp_path, db):
    out, html = tmp_path / "r.json", tmp_path / "report.html"
    r = bench(
        "run", "--model", "tiny_models:xnnpack_fallback", "--input-size", "16", "--backend", "et",
        "--threads", "1", *FAST, "--db", db, "--out", out,
    )  # fmt: skip
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    why = {(f["op"], f["why"]) for f in rec["runtime"]["placement"]["fallback"]}
    said = "XNNPACK partitioner: mean.dim only supports "
    assert why == {  # the partitioner's own words for the two means, and no config at all for cumsum
        ("mean", said + "averaging 4D tensors across the innermost dimensions"),
        ("mean", said + "keepdim=True"),
        ("cumsum", "XNNPACK partitioner has no config for cumsum.default"),
    }
    assert rec["runtime"]["placement"]["units"]["XNNPACK"]["nodes"] >= 2  # the conv and the linear stayed
    assert bench("report", "-o", html, "--db", db).returncode == 0
    assert "cumsum on portable kernels (fp32): XNNPACK partitioner has no config for cumsum.default" in html.read_text()


def _profile_et(tmp_path, db, *model):
    out = tmp_path / "p.json"
    r = bench("profile", *model, "--backend", "et", *FAST, "--threads", "1", "--iters", "5", "--db", db, "--out", out)
    assert r.returncode == 0, r.output
    _, prof = read_records(out)
    assert prof["runtime"]["profile_source"] == "ETDump + Inspector"
    return prof, r.output


def _node_rows_add_up(prof):
    """Kernels mapped to ONNX nodes one by one, and every row (unmapped ones with their reason) adding up
    to the method's own time in the ETDump."""
    report = prof["extra"]["profile"]
    rows = report["layers"]
    mapped = [row for row in rows if row["nodes"] and row["mapped_by"] in ("partition-order", "debug-handle")]
    assert mapped, rows
    assert all(row.get("unmapped_reason") for row in rows if not row["nodes"])
    total, method = report["profiled_total_ms"], prof["runtime"]["profile_execute_ms"]
    assert abs(total - method) <= 0.05 * method, (total, method)
    assert not any("DELEGATE_CALL" in row["name"] for row in rows)  # the envelope is not a layer
    return report, mapped


def test_bench_profile_on_executorch_maps_kernels_to_onnx_nodes(db, tmp_path):
    prof, output = _profile_et(tmp_path, db, *TINY_CNN)
    report, mapped = _node_rows_add_up(prof)
    by_node = {n: row for row in mapped for n in row["nodes"]}
    assert {"/0/Conv", "/2/Conv"} <= set(by_node), sorted(by_node)  # each XNNPACK convolution, its own node
    assert by_node["/0/Conv"]["name"] != by_node["/2/Conv"]["name"]
    assert by_node["/6/Gemm"]["kernel_type"].startswith("Fully Connected")
    assert report["per_layer"] and "ETRecord" in report["method"] and "ONNX nodes" in output


@pytest.mark.slow
def test_bench_profile_on_executorch_maps_efficientvit_m0(db, tmp_path):
    # XNNPACK partitions and portable kernels (the attention biases' index) in one real model
    prof, _ = _profile_et(tmp_path, db, "--model", "efficientvit_m0")
    report, mapped = _node_rows_add_up(prof)
    assert {row["mapped_by"] for row in mapped} == {"partition-order", "debug-handle"}
    assert sum(row["measured_ms"] for row in mapped) >= 0.5 * report["profiled_total_ms"]
    assert report["coverage"]["in_timed_kernels"] >= 100
