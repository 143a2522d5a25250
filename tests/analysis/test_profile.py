"""Per-layer profiles mapped through fused kernels, on real ONNX Runtime / OpenVINO / torch profiles of
small models, and `bench profile` end to end."""

import json
from collections import Counter

import pytest

from effbench.analysis.graph import aggregate
from effbench.analysis.profile import UNMAPPED_REASONS, build_op_type_report, build_report, map_layers
from effbench.analysis.summary import cached_analysis
from effbench.backends.base import LayerTime
from effbench.backends.profiling import LAYOUT_KERNELS
from effbench.backends.registry import get_backend
from effbench.backends.torch_profile import torch_op_type
from effbench.harness.assemble import assemble
from effbench.harness.child import measure_payload
from effbench.harness.config import RunConfig
from effbench.harness.prepare import check_cell, prepare
from effbench.harness.store import Store
from tests.conftest import FAST, bench, read_records

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone

MODEL = "efficientvit_m0"  # attention blocks: fused MatMul/Scale/Transpose, NCHWc convs, split fusions
SMALL = "mobilenetv3_small_050"
ITERS = 10

_CACHE: dict = {}


def profiled(model: str, backend: str):
    """(result with extra['profile'], backend layers, graph analysis) of one in-process profiled cell."""
    key = (model, backend)
    if key not in _CACHE:
        cfg = RunConfig(
            model=model,
            backend=backend,
            threads=1,
            profile_iters=ITERS,
            duration_s=0.2,
            warmup_s=0.05,
            warmup_iters=3,
            min_iters=3,
            parity=False,
        )
        cell = prepare(check_cell(cfg))
        measured = measure_payload(cell.payload())
        result = assemble(cell, measured)
        layers = [LayerTime(**lt) for lt in measured.profile_layers]
        _CACHE[key] = (result, layers, cached_analysis(cell.analysis_onnx, "fp32"))
    return _CACHE[key]


def _check_mapping(prof: dict, layers: list, analysis) -> dict:
    """What holds for any per-layer mapping; returns node -> kernel."""
    json.dumps(prof, allow_nan=False)  # JSON-safe, no inf / NaN
    assert prof["backend_layers"] == len(layers) > 10
    unmapped = {u["name"]: u for u in prof["unmapped_kernels"]}
    assert set(unmapped) == set(prof["unmapped"])
    for row in prof["layers"]:
        if row["measured_ms"] > 0:  # each timed kernel covers ONNX nodes, or says why not
            assert row["nodes"] or unmapped[row["name"]]["reason"] in UNMAPPED_REASONS, row
    # every counted node belongs to exactly one kernel, or to a layer the runtime reports as not run
    owner = Counter(n for row in prof["layers"] for n in row["nodes"])
    owner.update(n for layer in prof["untimed_layers"] for n in layer["nodes"])
    assert max(owner.values()) == 1
    counted = {s.name for s in analysis.nodes}
    assert counted <= set(owner)
    # ... and the nodes no kernel covers are those constant-folded away (shape arithmetic, Constants)
    assert prof["coverage"]["uncovered"] == 0
    assert prof["coverage"]["folded_nodes"] == len(analysis.folded_nodes) > 0
    assert not set(analysis.folded_nodes) & counted
    # a fused kernel's FLOPs are its nodes' sum; its bytes the group's external traffic (graph.aggregate)
    fused = [r for r in prof["layers"] if len([n for n in r["nodes"] if n in counted]) >= 2 and r["flops"]]
    assert fused
    for row in fused[:20]:
        group = aggregate(analysis, [n for n in row["nodes"] if n in counted])
        assert row["flops"] == pytest.approx(group.flops)
        assert row["bytes"] == pytest.approx(group.bytes_read + group.bytes_written)
    return {n: row["name"] for row in prof["layers"] for n in row["nodes"]}


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fused_kernels_map_back_to_the_onnx_graph(backend):
    result, layers, analysis = profiled(MODEL, backend)
    prof = result.extra["profile"]
    assert result.scenario == "latency" and result.profiled
    owner = _check_mapping(prof, layers, analysis)
    flops = {s.name: s.flops for s in analysis.nodes}
    untimed_flops = sum(flops.get(n, 0) for layer in prof["untimed_layers"] for n in layer["nodes"])
    assert prof["mapped_flops"] + untimed_flops == prof["graph_flops"] == analysis.flops
    assert prof["mapped_flops"] >= 0.99 * prof["graph_flops"]
    # what stays unmapped is the layout reorders the runtime inserts, nothing else
    for u in prof["unmapped_kernels"]:
        assert u["reason"] == "layout" and u["kernel_type"] in LAYOUT_KERNELS, u
    assert prof["unmapped_ms"] == pytest.approx(sum(u["measured_ms"] for u in prof["unmapped_kernels"]))
    assert prof["profiled_total_ms"] == pytest.approx(sum(r["measured_ms"] for r in prof["layers"]))
    # an attention score MatMul lands in a kernel whatever the runtime fused it with
    matmul = "/stages/stages.0/blocks/blocks.0/mixer/m/attn/MatMul"
    assert matmul in owner
    if backend == "onnxruntime":
        # every counted node ran inside a timed kernel: the optimized graph walked back is complete
        assert prof["mapped_flops"] == prof["graph_flops"]
        assert "MatmulTransposeFusion" in owner[matmul]
        assert any("profiler recorded" in w for w in prof["warnings"])  # warm-up runs rescaled away
    else:
        layer = next(r for r in prof["layers"] if r["name"] == owner[matmul])
        assert layer["kernel_type"] == "MatMul"
    # op-type table: shares of measured time and of the roofline bound each sum to one
    assert sum(r["share_of_measured"] for r in prof["op_types"]) == pytest.approx(1.0)
    if prof["roofline"] is not None:
        assert sum(r["share_of_bound"] or 0.0 for r in prof["op_types"]) == pytest.approx(1.0)
        conv = next(r for r in prof["op_types"] if r["op_type"] == "Conv")
        assert conv["share_of_bound"] > 0.5


# The time no ONNX node accounts for is the runtime's layout reorders. OpenVINO inserts few; ONNX
# Runtime's NCHWc transform inserts one ReorderInput/ReorderOutput per layout change (128 kernels on
# efficientvit_m0, 39 on mobilenetv3_small_050), and its profiler adds several µs to every kernel,
# which inflates those short ones most: measured here, 4-12 % of ORT's profiled time, 3-7 % of
# OpenVINO's on efficientvit_m0 (once over 10 % on a busy machine), up to 10 % on mobilenetv3_small_050.
@pytest.mark.parametrize(
    "model,backend,least",
    [
        (MODEL, "openvino", 0.85),
        (MODEL, "onnxruntime", 0.80),
        # mobilenetv3_small_050 runs in ~1.7 ms with one input reorder: a single preemption inside that one
        # kernel swings its share (seen 5-24 % in CI), so the bound is loose; the reasons check below is exact
        (SMALL, "openvino", 0.70),
        (SMALL, "onnxruntime", 0.70),
    ],
)
def test_most_of_the_measured_time_maps_to_graph_nodes(model, backend, least):
    result, layers, analysis = profiled(model, backend)
    prof = result.extra["profile"]
    _check_mapping(prof, layers, analysis)
    mapped_ms = prof["profiled_total_ms"] - prof["unmapped_ms"]
    assert mapped_ms >= least * prof["profiled_total_ms"], prof["unmapped_reasons"]
    assert set(prof["unmapped_reasons"]) <= {"layout"}
    assert prof["mapped_flops"] == pytest.approx(prof["graph_flops"], rel=0.01)


def test_torch_profile_is_compared_per_op_type():
    result, layers, _ = profiled(SMALL, "torch")
    prof = result.extra["profile"]
    json.dumps(prof, allow_nan=False)
    assert prof["per_layer"] is False
    assert any("not available for torch" in w for w in prof["warnings"])
    table = {r["op_type"]: r for r in prof["op_types"]}
    assert table and table["Conv"]["measured_ms"] > 0
    assert sum(r["share_of_measured"] or 0.0 for r in table.values()) == pytest.approx(1.0)
    assert sum(r["share_of_bound"] or 0.0 for r in table.values()) == pytest.approx(1.0)
    assert prof["profiled_total_ms"] == pytest.approx(sum(lt.time_ms for lt in layers))
    assert torch_op_type("aten::conv2d") == torch_op_type("aten::mkldnn_convolution") == "Conv"
    assert torch_op_type("aten::addmm") == "Gemm" and torch_op_type("aten::bmm") == "MatMul"
    assert torch_op_type("aten::empty") is None


def test_torch_cuda_kernel_rows_are_not_counted_twice():
    # torch.profiler on CUDA (as seen on an H200): each aten op carries the device time of the kernels it
    # launched, and the kernels are listed too
    layers = [
        LayerTime("aten::cudnn_convolution", "cudnn_convolution", 0.29),
        LayerTime("aten::bmm", "bmm", 0.17),
        LayerTime("aten::clamp_min", "clamp_min", 0.03),
        LayerTime("void cutlass::Kernel2<cutlass_80_tensorop_s1688gemm>", "cuda_kernel", 0.30),
        LayerTime("sm80_xmma_gemm_f32f32_tf32f32_f32_nn", "cuda_kernel", 0.16),
        LayerTime("void at::native::vectorized_elementwise_kernel<4, launch_clamp_scalar>", "cuda_kernel", 0.03),
    ]
    report = build_op_type_report(layers, get_backend("torch"), timed_median_ms=10.0)
    assert report["profiled_total_ms"] == pytest.approx(0.49)
    assert {r["op_type"] for r in report["op_types"]} == {"Conv", "MatMul", "Relu"}
    assert report["unmapped_ms"] == 0 and any("repeat the device time" in w for w in report["warnings"])


def test_a_node_claimed_by_two_kernels_goes_to_the_first():
    _, _, analysis = profiled(SMALL, "onnxruntime")
    node = analysis.nodes[0].name
    layers = [
        LayerTime("k1", "Conv", 1.0, [node]),
        LayerTime("k2", "Conv", 1.0, [node, analysis.nodes[1].name]),
        LayerTime("copy", "MemcpyToHost", 0.5),
    ]
    cell = prepare(check_cell(RunConfig(model=SMALL, backend="onnxruntime")))
    mapping = map_layers(get_backend("onnxruntime"), layers, cell.analysis_onnx, analysis)
    kernels = {k.name: k for k in mapping.kernels}
    assert kernels["k1"].nodes == [node] and node not in kernels["k2"].nodes
    assert any("claimed by two kernels" in w for w in mapping.warnings)
    assert kernels["copy"].nodes == [] and kernels["copy"].reason == "copy"
    # a device without peaks: FLOPs and bytes still filled, no bounds
    report = build_report(mapping, analysis, spec=None)
    json.dumps(report, allow_nan=False)
    row = next(r for r in report["layers"] if r["name"] == "k2")
    flops = {s.name: s.flops for s in analysis.nodes}
    assert row["flops"] == sum(flops[n] for n in row["nodes"]) > 0 and row["bytes"] > 0 and row["bound_ms"] is None
    assert report["unmapped"] == ["copy"] and report["unmapped_ms"] == 0.5
    assert any("no peaks" in w for w in report["warnings"])


def test_bench_profile_stores_a_timed_and_a_profiled_record(db, tmp_path):
    out = tmp_path / "p.json"
    r = bench(
        "profile",
        "--model",
        SMALL,
        "--backend",
        "ort",
        *FAST,
        "--threads",
        "1",
        "--iters",
        "5",
        "--top",
        "5",
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 0, r.output
    timed, prof_rec = read_records(out)
    assert (timed["scenario"], prof_rec["scenario"]) == ("latency", "latency")  # a real scenario
    assert (timed["profiled"], prof_rec["profiled"]) == (False, True)
    assert timed["status"] == prof_rec["status"] == "ok"
    assert timed["parity"]["ok"] is True
    stored = Store(db).records()
    assert sorted(s["profiled"] for s in stored) == [False, True]
    prof = prof_rec["extra"]["profile"]
    assert prof["timed_cell_median_ms"] == timed["latency_ms"]["median"]
    assert prof["iterations"] == 5 and prof["layers"]
    top = prof["layers"][0]
    assert top["nodes"] and top["name"][-20:] in r.stdout  # the top layer is printed
    assert "top 5 of" in r.stdout and "by op type" in r.stdout
    assert "profiled total" in r.stdout and "vs timed median" in r.stdout
    assert "unmapped:" in r.stdout and "mapped FLOPs" in r.stdout


@pytest.mark.parametrize(
    "args,words",
    [
        (["--model", SMALL, "--backend", "nosuchruntime"], "nosuchruntime"),
        (["--model", "nosuchmodel_xyz", "--backend", "ort"], "nosuchmodel_xyz"),
        (["--model", SMALL, "--backend", "ort", "--iters", "0"], "--iters"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words, db):
    r = bench("profile", *args, "--db", db)
    assert r.returncode == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert "Traceback" not in r.output
