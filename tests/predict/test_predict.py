"""The latency predictor: fusion rules, a quick real build on a tiny kernel set (OpenVINO), sums,
validation statistics, and the bad input of `bench predict` / `bench predictor`."""

from __future__ import annotations

import importlib.metadata
import json
import math

import numpy as np
import pytest

from effbench.predict import zoo
from effbench.predict.kernels import detect, load
from effbench.predict.predictor import Predictor, fit, new_data
from effbench.predict.stats import accuracy, spearman
from tests.conftest import one_line
from tests.predict.graphs import attention, only_cumsum, tiny_cnn

openvino = pytest.importorskip("openvino")


def test_fusion_rules_group_what_the_runtime_fuses(tmp_path):
    kernels = detect(load(tiny_cnn(tmp_path / "tiny.onnx")))
    assert [(k.type, k.nodes) for k in kernels] == [
        ("conv", ["conv0", "bn0", "relu0"]),
        ("dwconv", ["dw1", "sig1", "silu1"]),
        ("pwconv", ["pw2", "res_add"]),
        ("pool", ["gap"]),
        ("reshape", ["flatten"]),
        ("linear", ["fc", "relu_fc"]),
    ]
    assert kernels[1].attrs["act"] == "silu" and kernels[2].attrs["residual"] is True
    attn = detect(load(attention(tmp_path / "attn.onnx")))
    assert [k.type for k in attn] == [
        "linear",
        "linear",
        "linear",
        "transpose",
        "matmul",
        "softmax",
        "matmul",
        "reshape",
        "transpose",
    ]
    assert attn[4].nodes == ["qk", "scale_mul"]  # the attention scale runs inside the matrix product
    assert attn[0].signature == attn[1].signature != attn[4].signature  # same shapes and ops: the same work


def test_an_operator_no_rule_covers_is_its_own_unknown_kernel(tmp_path):
    kernels = detect(load(tiny_cnn(tmp_path / "odd.onnx", extra_op="CumSum")))
    odd = [k for k in kernels if not k.covered]
    assert [(k.type, k.nodes) for k in odd] == [("op:CumSum", ["odd_op"])]


def _hand_made(kernels, values, correction=None):
    data = new_data("openvino", "cpu", {"backend_version": "x", "cpu": "y"})
    data["table"] = [
        {"signature": k.signature, "type": k.type, "features": k.features(), "kernel_ns": v}
        for k, v in zip(kernels, values)
    ]
    predictor = fit(data)
    if correction:
        predictor.data["correction"].update(correction)
    return predictor


def test_a_model_made_only_of_table_kernels_predicts_as_their_sum(tmp_path):
    kernels = detect(load(tiny_cnn(tmp_path / "tiny.onnx")))
    values = [1000.0 * (i + 1) for i in range(len(kernels))]
    p = _hand_made(kernels, values)
    pred = p.predict(kernels)
    assert [kp.source for kp in pred.kernels] == ["table"] * len(kernels)
    assert pred.total_ns == pytest.approx(sum(values))
    # with a per-model correction: c0 + c1 * kernels + sum of b_type * kernel
    scale = {k.type: 1.0 for k in kernels} | {"conv": 2.0}
    p = _hand_made(kernels, values, {"c0_ns": 500.0, "per_kernel_ns": 10.0, "scale": scale})
    pred = p.predict(kernels)
    expected = 500 + 10 * len(kernels) + sum(v * scale[k.type] for k, v in zip(kernels, values))
    assert pred.total_ns == pytest.approx(expected)
    assert pred.low_ns <= pred.total_ns <= pred.high_ns


def test_unknown_kernels_are_left_out_and_their_share_said(tmp_path):
    known = detect(load(tiny_cnn(tmp_path / "tiny.onnx")))
    p = _hand_made(known, [1000.0] * len(known))
    odd = detect(load(tiny_cnn(tmp_path / "odd.onnx", extra_op="CumSum")))
    pred = p.predict(odd)
    assert pred.unknown["kernels"] == 1 and pred.unknown["ops"] == ["CumSum"]
    assert pred.total_ns == pytest.approx(1000.0 * len(known))


def test_no_measured_kernel_is_a_refusal_and_a_large_unknown_share_a_warning(tmp_path):
    known = detect(load(tiny_cnn(tmp_path / "tiny.onnx")))
    full = _hand_made(known, [1000.0] * len(known))
    assert full.predict(known).refusal("tiny", full.id) is None
    assert full.predict(known).unknown_warning("tiny") is None
    nothing = full.predict(detect(load(only_cumsum(tmp_path / "c.onnx"))))
    why = nothing.refusal("c.onnx", full.id)
    assert why and "no measured kernel for c.onnx" in why and "bench predictor build --zoo c.onnx" in why
    empty = _hand_made([], [])
    assert empty.predict(known).refusal("tiny", empty.id)
    one = _hand_made(known[:1], [1000.0])  # only the first conv: the depthwise and pointwise convs are unknown
    pred = one.predict(known)
    assert pred.refusal("tiny", one.id) is None and pred.unknown["flops_share"] > 0.1
    assert pred.unknown_warning("tiny").startswith(f"{pred.unknown['flops_share']:.0%} of tiny's FLOPs")


def test_kernel_jobs_come_biggest_first(tmp_path):
    from effbench.predict.build import ZooModel, kernel_jobs

    path = tiny_cnn(tmp_path / "tiny.onnx")
    graph = load(path)
    kernels = detect(graph)
    m = ZooModel("tiny", [1, 3, 32, 32], path, kernels, sum(k.flops for k in kernels), graph)
    (tmp_path / "kernels").mkdir()
    jobs, seen = kernel_jobs([m], tmp_path, {kernels[0].signature})
    flops = [seen[j["signature"]].flops for j in jobs]
    assert flops == sorted(flops, reverse=True) and len(jobs) == len(seen) - 1
    assert kernels[0].signature not in {j["signature"] for j in jobs}


def test_validation_statistics_on_a_hand_made_table():
    measured = [1.0, 2.0, 3.0, 4.0, 5.0]
    predicted = [1.04, 2.3, 2.9, 4.0, 4.4]  # errors +4%, +15%, -3.3%, 0%, -12%
    s = accuracy(predicted, measured, flops=[5, 4, 3, 2, 1])
    assert s["models"] == 5
    assert s["within_5"] == pytest.approx(3 / 5)
    assert s["within_10"] == pytest.approx(3 / 5)
    errs = [(p - m) / m for p, m in zip(predicted, measured)]
    assert s["rmspe"] == pytest.approx(math.sqrt(sum(e * e for e in errs) / 5))
    assert s["spearman"] == pytest.approx(1.0)
    assert s["flops_spearman"] == pytest.approx(-1.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [3, 1, 2, 2, 5, 4], [1, 2, 2, 3, 6, 4]
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)


def test_zoo_and_held_out_models_are_disjoint():
    assert not set(zoo.build_zoo()) & set(zoo.HELD_OUT)
    assert len(zoo.HELD_OUT) >= 20


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A real build on a tiny kernel set: two small hand-made models measured on OpenVINO."""
    import os

    state = tmp_path_factory.mktemp("predict-state")
    os.environ["EFFBENCH_STATE"] = str(state)
    from effbench.predict.build import build
    from effbench.predict.measure import Window

    d = tmp_path_factory.mktemp("zoo")
    zoo_models = [tiny_cnn(d / "a.onnx"), tiny_cnn(d / "b.onnx", channels=24)]
    lines: list[str] = []
    window = Window(warmup_s=0.01, warmup_iters=3, duration_s=0.02, min_iters=5, profile_iters=5)
    model_window = Window(warmup_s=0.02, warmup_iters=3, duration_s=0.1, min_iters=10, profile_iters=0)
    report = build("ov", "cpu", zoo_models, [None], 120, lines.append, window=window, model_window=model_window)
    again: list[str] = []
    build("openvino", "cpu", zoo_models, [None], 120, again.append, window=window, model_window=model_window)
    assert report.predictor.data["identity"]["threads"] == 1
    yield report, lines, again, zoo_models, state
    os.environ.pop("EFFBENCH_STATE", None)


def test_quick_build_measures_the_kernels_and_resumes(built):
    report, lines, again, zoo_models, _ = built
    p = report.predictor
    assert report.complete and report.models_measured == 2
    assert report.kernels_measured == report.kernels_total >= 10
    assert all(r["kernel_ns"] >= 0 for r in p.data["table"])
    convs = [r for r in p.data["table"] if r["type"] in ("conv", "dwconv", "pwconv")]
    assert convs and all(r["kernel_ns"] > 0 for r in convs)
    assert p.data["identity"]["backend_version"] == importlib.metadata.version("openvino")
    assert report.path.exists() and json.loads(report.path.read_text())["id"] == "openvino-cpu"
    assert any("measuring 0 kernels" in line for line in again), again  # the rerun measured nothing again
    # every kernel measured twice, apart in time (the second pass after the first), its time the fastest
    assert any("kernels again, apart in time" in line for line in lines), lines
    assert not any("again, apart" in line for line in again), again
    assert p.data["built"]["kernel_passes"] == {"2": len(p.data["table"])}
    for r in p.data["table"]:
        assert len(r["passes"]) == 2 and r["kernel_ns"] == min(r["passes"])
    for path in zoo_models:
        kernels = detect(load(path))
        pred = p.predict(kernels)
        assert {kp.source for kp in pred.kernels} == {"table"}
        assert pred.total_ns > 0 and np.isfinite(pred.total_ns)


def test_predict_prints_the_whole_the_interval_and_the_layers(built, cli, tmp_path):
    _, _, _, zoo_models, state = built
    r = cli(
        "predict",
        "--model",
        zoo_models[0],
        "--backend",
        "openvino",
        "--device",
        "cpu",
        env={"EFFBENCH_STATE": str(state)},
    )
    assert r.returncode == 0, r.output
    assert "predicted" in r.stdout and "90% interval" in r.stdout and "slowest" in r.stdout
    assert "not validated" in r.stdout
    r = cli(
        "predict",
        "--model",
        tiny_cnn(tmp_path / "odd.onnx", extra_op="CumSum"),
        "--json",
        env={"EFFBENCH_STATE": str(state)},
    )
    out = json.loads(r.stdout)
    assert out["unknown"]["ops"] == ["CumSum"] and out["predicted_ms"] > 0
    nothing = only_cumsum(tmp_path / "c.onnx")
    one_line(cli("predict", "--model", nothing, env={"EFFBENCH_STATE": str(state)}), 2, "no measured kernel")


def _edited(src, tmp_path, name, **identity):
    data = json.loads(src.read_text())
    data["identity"].update(identity)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_bad_input(built, cli, tmp_path):
    report, _, _, zoo_models, state = built
    env = {"EFFBENCH_STATE": str(state)}
    model = zoo_models[0]
    f = report.path
    one_line(
        cli("predict", "-m", model, "--backend", "onnxruntime", "--predictor", f, env=env),
        2,
        "built for openvino, not onnxruntime",
    )
    one_line(
        cli("predict", "-m", model, "--device", "lab-xeon", "--predictor", f, env=env),
        2,
        "built for device 'cpu', not 'lab-xeon'",
    )
    one_line(
        cli("predict", "-m", model, "--device", "lab-xeon", env=env),
        2,
        "no predictor for openvino on lab-xeon",
        "bench predictor import",
    )
    v = openvino.get_version().split("-")[0].split(".")
    other_minor = _edited(f, tmp_path, "minor.json", backend_version=f"{v[0]}.{int(v[1]) + 1}.0")
    one_line(cli("predict", "-m", model, "--predictor", other_minor, env=env), 2, "rebuild it")
    other_patch = _edited(f, tmp_path, "patch.json", backend_version=f"{v[0]}.{v[1]}.99")
    r = cli("predict", "-m", model, "--predictor", other_patch, env=env)
    assert r.returncode == 0 and "warning: " in r.stdout and "patch versions differ" in r.stdout
    other_cpu = _edited(f, tmp_path, "cpu.json", cpu="Some Other CPU")
    one_line(cli("predict", "-m", model, "--predictor", other_cpu, env=env), 2, "Some Other CPU")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    one_line(cli("predict", "-m", model, "--predictor", junk, env=env), 2, "not a predictor file")
    one_line(cli("predictor", "import", junk, env=env), 2, "not a predictor file")
    one_line(cli("predict", "-m", model, "--batch", "4", env=env), 2, "built at batch 1")
    one_line(cli("predict", "-m", model, "--threads", "2", env=env), 2, "predicts 1 thread(s), not 2")
    one_line(cli("predict", "-m", model, "--backend", "torch", env=env), 2, "torch has none")
    one_line(cli("predictor", "validate", "--models", "a,,b", env=env), 2, "empty name")
    one_line(cli("predictor", "build", "--budget", "0", env=env), 2, "--budget")
    one_line(cli("predictor", "build", "--resolutions", "default,huge", env=env), 2, "--resolutions")
    one_line(cli("predictor", "import", f, env=env), 2, "--force")


def test_validate_refuses_build_models_and_stores_its_statistics(built, tmp_path):
    report, _, _, zoo_models, state = built
    from effbench.errors import UsageError
    from effbench.predict.build import validate
    from effbench.predict.measure import Window

    with pytest.raises(UsageError, match="held-out"):
        validate(report.predictor, [zoo_models[0]], print)
    held_out = [tiny_cnn(tmp_path / "c.onnx", channels=20), tiny_cnn(tmp_path / "d.onnx", channels=32)]
    window = Window(warmup_s=0.02, warmup_iters=3, duration_s=0.1, min_iters=10, profile_iters=0)
    stats = validate(report.predictor, held_out, print, window=window)
    assert stats["models"] == 2 and 0 <= stats["within_10"] <= 1 and stats["rmspe"] >= 0
    assert [r["model"] for r in stats["results"]] == ["c", "d"]
    stored = Predictor.read(report.path).validation
    assert stored["models"] == 2 and stored["results"][0]["measured_ms"] > 0


def test_export_and_import_round_trip(built, cli, tmp_path):
    _, _, _, zoo_models, state = built
    out = tmp_path / "shared.json"
    assert cli("predictor", "export", out, env={"EFFBENCH_STATE": str(state)}).returncode == 0
    teammate = tmp_path / "teammate-state"
    r = cli("predictor", "import", out, env={"EFFBENCH_STATE": str(teammate)})
    assert r.returncode == 0, r.output
    assert Predictor.read(teammate / "predictors" / "openvino-cpu.json").data == json.loads(out.read_text())
    r = cli("predictor", "list", env={"EFFBENCH_STATE": str(teammate)})
    assert "openvino-cpu" in r.stdout and "kernels" in r.stdout


def test_report_shows_predicted_against_measured_and_flags_a_deviation(built, cli, tmp_path):
    from effbench.harness.store import Store
    from effbench.reports.html import render_html
    from tests.conftest import FAST

    _, _, _, zoo_models, state = built
    env = {"EFFBENCH_STATE": str(state)}
    db = tmp_path / "results.db"
    r = cli("run", "--model", zoo_models[0], "--backend", "openvino", "--threads", "1", "--db", db, *FAST, env=env)
    assert r.returncode == 0, r.output
    records = Store(str(db)).records()
    html = render_html(records)
    section = html.split('id="prediction"')[1].split("</section>")[0]
    assert "predicted ms" in section and "fig-prediction" in section
    slow = json.loads(json.dumps(records[0]))
    slow["id"] = "slow"
    slow["config"]["tag"] = "slow"
    slow["latency_ms"]["median"] = records[0]["latency_ms"]["median"] * 10  # a 10x regression
    section = render_html([slow]).split('id="prediction"')[1].split("</section>")[0]
    assert "outside the band" in section


def test_a_cut_build_covers_what_it_measured_and_keeps_a_fuller_predictor(built, tmp_path, monkeypatch):
    """A budget that runs out at once: the first model's kernels are still measured (biggest first)
    and make a predictor; the installed one, which covers more, is not replaced."""
    from effbench.predict.build import build
    from effbench.predict.measure import Window

    report, _, _, zoo_models, state = built
    installed = report.path.read_bytes()
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path / "cache"))  # no measurements to resume from
    monkeypatch.setenv("EFFBENCH_STATE", str(state))
    window = Window(warmup_s=0.01, warmup_iters=3, duration_s=0.02, min_iters=5, profile_iters=5)
    cut = build("openvino", "cpu", zoo_models, [None], 0.001, print, window=window, model_window=window)
    assert not cut.complete and cut.kept is not None and cut.path != report.path
    assert report.path.read_bytes() == installed
    first = detect(load(zoo_models[0]))
    assert {r["signature"] for r in cut.predictor.data["table"]} == {k.signature for k in first}
    assert len(cut.predictor.data["built"]["zoo"]) == 1  # the budget stopped the export of the second model
    assert cut.predictor.predict(first).refusal("a", cut.predictor.id) is None


def test_a_kernels_passes_fold_into_the_fastest_and_a_failed_pass_counts_for_nothing():
    from effbench.predict.passes import merged

    lines = [
        {"signature": "a", "type": "conv", "kernel_ns": 100.0, "layers": ["Convolution"]},
        {"signature": "b", "type": "conv", "error": "RuntimeError: no"},
        {"signature": "a", "type": "conv", "kernel_ns": 140.0, "layers": ["Convolution"]},
        {"signature": "b", "type": "conv", "kernel_ns": 50.0},
        {"signature": "c", "type": "pool", "kernel_ns": 10.0},
        {"signature": "c", "type": "pool", "error": "RuntimeError: flaky"},
    ]
    rows = merged(lines)
    assert rows["a"]["kernel_ns"] == 100.0 and rows["a"]["passes"] == [100.0, 140.0]
    assert rows["b"]["kernel_ns"] == 50.0 and rows["b"]["passes"] == [50.0] and "error" not in rows["b"]
    assert rows["c"]["kernel_ns"] == 10.0 and rows["c"]["passes"] == [10.0]


def test_a_log_linear_type_extrapolates_within_bounds_when_work_and_traffic_move_together():
    from effbench.predict.predictor import EXTRAPOLATE, _Regressor, fit_regressor

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):  # softmax-like rows: traffic a constant step above the work, time growing with both
        work = 10.0 + i
        features = [work, work + 1.0 + 1e-3 * rng.standard_normal(), 0.0] + [0.0] * 17
        rows.append({"features": features, "kernel_ns": 1000.0 * 2 ** (work - 10)})
    spec = fit_regressor(rows)
    assert spec["kind"] == "loglinear"
    reg = _Regressor(spec)
    inside = reg(np.array([rows[5]["features"]]))[0]
    assert inside == pytest.approx(rows[5]["kernel_ns"], rel=0.5)
    # a kernel whose traffic is far below its work (collinear slopes would cancel into a huge value)
    odd = np.array([[30.0, 2.0, 0.0] + [0.0] * 17])
    lo, hi = spec["range_ns"]
    assert lo / EXTRAPOLATE <= reg(odd)[0] <= hi * EXTRAPOLATE
