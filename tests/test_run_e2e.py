"""`bench run` end to end through the real runtimes on a small model."""

import json

import pytest

from effbench import load_results
from tests.conftest import FAST, PLUGIN_ENV, TINY_CNN, bench, export_tiny_onnx, read_records

MODEL = "efficientvit_m0"
REQUIRED = [
    "model",
    "backend",
    "device",
    "scenario",
    "batch_size",
    "precision",
    "status",
    "error",
    "latency_ms",
    "throughput_per_s",
    "iterations",
    "first_inference_ms",
    "load_s",
    "export_s",
    "artifact_bytes",
    "params",
    "parity",
    "env",
    "samples_ms",
]
LATENCY_KEYS = ["median", "mean", "std", "min", "max", "p90", "p95", "p99", "ci95_low", "ci95_high"]


@pytest.mark.parametrize("backend,canonical", [("torch", "torch"), ("ort", "onnxruntime"), ("ov", "openvino")])
def test_run_each_backend_records_whole_result(backend, canonical, db, tmp_path):
    out = tmp_path / "r.json"
    r = bench("run", "--model", MODEL, "--backend", backend, *FAST, "--threads", "1", "--db", db, "--out", out)
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    for key in REQUIRED:
        assert key in rec, key
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["backend"] == canonical and rec["model"] == MODEL
    lat = rec["latency_ms"]
    assert all(k in lat for k in LATENCY_KEYS)
    assert lat["min"] <= lat["ci95_low"] <= lat["median"] <= lat["ci95_high"] <= lat["max"]
    assert rec["iterations"] == len(rec["samples_ms"]) >= 5
    assert rec["parity"]["ok"] is True and rec["parity"]["cosine"] > 0.9999
    assert rec["precision_ran"] == "fp32"
    assert rec["params"] > 1_000_000
    assert rec["first_inference_ms"] > 0 and rec["load_s"] > 0
    assert rec["threads"] == 1
    assert rec["env"]["cpu_model"] and rec["env"]["versions"]["torch"]
    assert rec["memory"]["peak_rss_mb"] > 0
    if canonical != "torch":
        assert rec["artifact_bytes"] > 1_000_000
    # the runtime's own thread setting was applied
    threads_seen = {"torch": "num_threads", "onnxruntime": "intra_op_num_threads", "openvino": "inference_num_threads"}[
        canonical
    ]
    assert rec["runtime"][threads_seen] == 1


def test_second_run_reuses_cached_artifact(db, tmp_path):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    cache = {"EFFBENCH_CACHE": str(tmp_path / "cache")}  # empty: other tests fill the session's cache
    for out in outs:
        r = bench(
            "run",
            *TINY_CNN,
            "--backend",
            "onnxruntime",
            *FAST,
            "--db",
            db,
            "--out",
            out,
            env=cache,
        )
        assert r.returncode == 0, r.output
    first, second = (read_records(o)[0] for o in outs)
    assert first["artifact_cached"] is False and first["export_s"] > 0
    assert second["artifact_cached"] is True
    assert second["artifact_bytes"] == first["artifact_bytes"]
    assert "artifact from cache" in r.stdout


def test_store_round_trip_through_dataframe_and_results_command(db, tmp_path):
    out = tmp_path / "r.json"
    r = bench("run", "--model", MODEL, "--backend", "null", *FAST, "--db", db, "--out", out, "--tag", "rt")
    assert r.returncode == 0, r.output
    (written,) = read_records(out)
    df = load_results(db)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["id"] == written["id"] and row["tag"] == "rt"
    assert row["latency_median_ms"] == pytest.approx(written["latency_ms"]["median"])
    r = bench("results", "--db", db, "--format", "json")
    stored = json.loads(r.stdout)
    assert stored[0]["samples_ms"] == written["samples_ms"]
    assert stored[0]["env"] == written["env"]
    r = bench("results", "--db", db, "--format", "csv")
    assert r.stdout.splitlines()[0].startswith("id,") and MODEL in r.stdout


def test_onnx_file_and_factory_models(tmp_path, db, _isolated_cache):
    path = export_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "r.json"
    r = bench("run", "--model", path, "--backend", "ov", "--batch", "2", *FAST, "--db", db, "--out", out)
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["model"] == "tiny" and rec["batch_size"] == 2
    assert rec["parity"]["reference"] == "onnxruntime" and rec["parity"]["ok"]
    r = bench(
        "run",
        *TINY_CNN,
        "--backend",
        "ort",
        *FAST,
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["model"] == "tiny_models:tiny_cnn" and rec["parity"]["ok"]


def test_openvino_precision_is_explicit(db, tmp_path):
    from effbench.backends.openvino_backend import OpenVINOBackend

    if OpenVINOBackend().check_precision("bf16"):
        pytest.skip("this CPU has no bf16 in OpenVINO")
    out = tmp_path / "r.json"
    r = bench("run", "--model", MODEL, "--backend", "ov", "--precision", "bf16", *FAST, "--db", db, "--out", out)
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["precision"] == "bf16" and rec["precision_ran"] == "bf16"
    assert rec["runtime"]["inference_precision"] == "bf16"
    assert rec["parity"]["tolerance"]["cosine"] < 0.9999  # judged with the bf16 tolerance


def _one_line_error(r, code, *needles):
    assert r.returncode == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize(
    "args,code,needles",
    [
        (["--model", "efficientvit_m9", "--backend", "ort"], 2, ["unknown model", "efficientvit_m"]),
        (["--model", "timm:not_a_model_xyz", "--backend", "ort"], 2, ["unknown model"]),
        (["--model", MODEL, "--backend", "onnxrt"], 2, ["unknown backend", "onnxruntime"]),
        (["--model", "missing/model.onnx", "--backend", "ort"], 2, ["not found"]),
        (["--model", MODEL, "--backend", "ort", "--batch", "0"], 2, ["--batch"]),
        (["--model", MODEL, "--backend", "ort", "--precision", "fp64"], 2, ["--precision"]),
        (["--model", MODEL, "--backend", "ort", "--target-ci", "abc"], 2, ["invalid --target-ci", "1%"]),
        (["--model", MODEL, "--backend", "ort", "--opt", "novalue"], 2, ["KEY=VALUE"]),
        (["--model", MODEL, "--backend", "ort", "--threads", "x"], 2, ["--threads"]),
        (["--model", MODEL, "--backend", "ort", "--precision", "bf16"], 2, ["bf16"]),
        (["--model", "tiny_models:not_a_module", "--backend", "ort"], 2, ["torch.nn.Module"]),  # before any work
        (["--model", "no_such_pkg.mod:factory", "--backend", "ort"], 2, ["cannot import"]),
    ],
)
def test_bad_input_is_one_line(args, code, needles, db):
    _one_line_error(bench("run", *args, *FAST, "--db", db), code, *needles)


def test_corrupt_onnx_file(tmp_path, db):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    _one_line_error(bench("run", "--model", bad, "--backend", "ort", "--db", db), 2, "bad.onnx")


def test_unusable_backend(db):
    env = PLUGIN_ENV
    _one_line_error(
        bench("run", "--model", MODEL, "--backend", "missingrt", "--db", db, env=env), 2, "not usable", "not installed"
    )
    r = bench("backends", env=env)
    assert r.returncode == 0
    line = next(ln for ln in r.stdout.splitlines() if "missingrt" in ln)
    assert "no" in line and "not installed" in line


def test_pretrained_without_network_is_one_line(db):
    env = {"HF_HUB_OFFLINE": "1"}
    _one_line_error(
        bench("run", "--model", MODEL, "--backend", "ort", "--pretrained", "--db", db, env=env), 1, "pretrained"
    )


def test_models_and_backends_listings():
    r = bench("models")
    assert r.returncode == 0
    for name in ["efficientvit_m5", "efficientformer_l1", "resnet50", "fastvit_t8", "repvit_m1_0", "mobilevitv2_100"]:
        assert name in r.stdout
    r = bench("backends")
    for name in ["torch", "onnxruntime", "openvino", "null"]:
        assert name in r.stdout
    assert bench("run", "--help").returncode == 0


def test_export_failure_is_recorded_with_the_exporters_message(tmp_path, db):
    out = tmp_path / "r.json"
    r = bench(
        "run",
        "--model",
        "tiny_models:svd_model",
        "--input-size",
        "8",
        "--backend",
        "ort",
        *FAST,
        "--db",
        db,
        "--out",
        out,
    )
    assert r.returncode == 1, r.output
    (rec,) = read_records(out)
    assert rec["status"] == "failed"
    assert rec["error"].startswith("ONNX export failed") and "svd" in rec["error"]
    assert "Traceback" not in r.output
    stored = load_results(db)
    assert list(stored["status"]) == ["failed"]


@pytest.mark.slow
def test_torch_compile_runs_and_first_inference_holds_the_compilation(tmp_path, db):
    out = tmp_path / "r.json"
    r = bench(
        "run",
        *TINY_CNN,
        "--backend",
        "torch",
        "--compile",
        *FAST,
        "--db",
        db,
        "--out",
        out,
    )  # a three-layer CNN: inductor's own start-up is what makes the first call slow, not the model
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["runtime"]["compile"] is True and rec["parity"]["ok"]
    # torch.compile compiles on the first call: it is reported there, apart from steady state
    assert rec["first_inference_ms"] > 20 * rec["latency_ms"]["median"]
