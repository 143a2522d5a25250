"""The measurement core on its own: dependency-light, Python 3.8, shippable under another package
name, and its agent entry point run the way a device runs it."""

from __future__ import annotations

import ast
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import effbench.core as core

CORE = Path(core.__file__).parent
FILES = sorted(CORE.rglob("*.py"))
RUNTIME_MODULES = {
    "onnxruntime",
    "openvino",
    "coremltools",
    "onnx",
    "pynvml",
    "mlperf_loadgen",
    "ai_edge_litert",
    "executorch",
    "torch",
}  # inside functions only
# (torch: ExecuTorch's Python runtime takes torch tensors)


def _imports(tree: ast.AST, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_only_the_stdlib_numpy_and_its_own_files(path):
    tree = ast.parse(path.read_text())
    assert _imports(tree, True) <= set(sys.stdlib_module_names) | {"__future__", "numpy"}
    assert not any(n.startswith("effbench") for n in _imports(tree, False))  # relative imports only
    assert _imports(tree, False) <= set(sys.stdlib_module_names) | {"__future__", "numpy"} | RUNTIME_MODULES


def test_core_is_python_3_8():
    vermin = Path(sys.executable).parent / "vermin"
    if not vermin.exists():
        pytest.skip("vermin not installed (pip install vermin)")
    r = subprocess.run(
        [str(vermin), "-t=3.8-", "--no-tips", "--violations", "--eval-annotations", str(CORE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for path in FILES:
        ast.parse(path.read_text(), feature_version=(3, 8))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path_factory.mktemp("agent") / "m.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), input_names=["input"], dynamo=False)
    return model, path


def _shipped(tmp_path) -> Path:
    """The core as a device receives it: the files alone, as the package effbench_core."""
    root = tmp_path / "device"
    shutil.copytree(CORE, root / "effbench_core", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _agent(root: Path, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    # -I: no PYTHONPATH, no user site; effbench itself is not importable from there
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); import runpy; "
        f"sys.argv = ['effbench_core.agent'] + {args!r}; runpy.run_module('effbench_core.agent', run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-I", "-c", code], input=stdin, capture_output=True, timeout=120, cwd=root)


def test_shipped_core_measures_an_onnx_file_with_every_setting(tmp_path, onnx_model):
    import torch

    model, path = onnx_model
    root = _shipped(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, x)
    settings = {
        "runtime": "onnxruntime",
        "input_shape": [1, 3, 8, 8],
        "threads": 1,
        "duration_s": 5.0,
        "warmup_s": 0.01,
        "warmup_iters": 7,
        "min_iters": 5,
        "max_iters": 40,
    }
    request = json.dumps({"artifact": str(path), "settings": settings}).encode() + b"\n"
    r = _agent(root, ["--run"], request + buf.getvalue())
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert all(ln["event"] == "progress" for ln in lines[:-1])
    res = lines[-1]
    assert res["event"] == "result"
    assert "effbench" not in res["imported"] and not res["imported"]["torch"]
    from effbench.core.protocol import loads

    res = loads(r.stdout.decode().splitlines()[-1])
    assert res["samples_ns"].size == 40  # max_iters ends the run long before the 5 s duration
    assert res["warmup_iters"] >= 7 and res["runtime_info"]["intra_op_num_threads"] == 1
    assert res["settings"]["max_iters"] == 40
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(res["outputs"][0], ref, rtol=1e-4, atol=1e-5)


def test_bad_input_shape_and_missing_artifact_are_error_lines(tmp_path, onnx_model):
    root = _shipped(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 3, 4, 4), np.float32))
    settings = {"runtime": "onnxruntime", "input_shape": [1, 3, 8, 8]}
    for artifact, kind, needle in [
        (str(onnx_model[1]), "bad_input", "expected [1, 3, 8, 8]"),
        (str(tmp_path / "nope.onnx"), "bad_artifact", "not found"),
    ]:
        request = json.dumps({"artifact": artifact, "settings": settings}).encode() + b"\n"
        r = _agent(root, ["--run"], request + buf.getvalue())
        assert r.returncode == 3
        err = json.loads(r.stdout.decode().splitlines()[-1])
        assert err["event"] == "error" and err["kind"] == kind and needle in err["message"]


def test_probe_names_the_runtimes(tmp_path):
    r = _agent(_shipped(tmp_path), ["--probe", "--workdir", str(tmp_path)])
    assert r.returncode == 0, r.stderr.decode()
    ans = json.loads(r.stdout.decode().splitlines()[-1])
    assert set(ans["runtimes"]) == {"onnxruntime", "openvino", "coreml", "litert", "executorch"}
    assert ans["runtimes"]["litert"]["version"] and ans["runtimes"]["executorch"]["version"]
    assert ans["runtimes"]["onnxruntime"]["version"] and ans["disk_free_gib"] > 0


def test_shipped_core_runs_the_sustained_scenario_with_telemetry_and_the_gate(tmp_path, onnx_model, monkeypatch):
    # a board's thermal zone, built here (this VM has none), read by the agent's own probes
    zone = tmp_path / "sys-root" / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("soc-thermal\n")
    (zone / "temp").write_text("41500\n")
    monkeypatch.setenv("EFFBENCH_SYS_ROOT", str(tmp_path / "sys-root"))
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 3, 8, 8), np.float32))
    settings = {
        "runtime": "onnxruntime",
        "input_shape": [1, 3, 8, 8],
        "threads": 1,
        "scenario": "sustained",
        "duration_s": 0.6,
        "window_s": 0.2,
        "warmup_s": 0.01,
        "max_start_temp": 45.0,
        "cooldown_timeout_s": 5.0,
    }
    request = json.dumps({"artifact": str(onnx_model[1]), "settings": settings}).encode() + b"\n"
    r = _agent(_shipped(tmp_path), ["--run"], request + buf.getvalue())
    assert r.returncode == 0, r.stderr.decode()
    res = json.loads(r.stdout.decode().splitlines()[-1])
    s = res["scenario_summary"]
    assert len(s["windows"]) == 3 and all(w["telemetry"]["hottest_c"] == 41.5 for w in s["windows"])
    assert isinstance(s["throttled"], bool) and s["last_first"]["ratio"] > 0
    t = res["telemetry"]
    assert t["gate"]["met"] is True and t["gate"]["sensor"] == "soc-thermal"
    assert t["before"]["thermal"]["zones"]["soc-thermal"]["kind"] == "soc" and "load" in t["after"]
