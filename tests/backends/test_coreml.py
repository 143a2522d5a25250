"""Core ML: export on any OS (cached, with the conversion path recorded), and a backend that says
plainly that it needs macOS everywhere else."""

from __future__ import annotations

import json

import pytest

from effbench.backends import coreml_backend
from effbench.backends.registry import get_backend
from effbench.core.runtimes import coreml as core_coreml
from effbench.core.settings import MeasureSettings
from effbench.errors import RunFailed, UsageError
from effbench.export.coreml_export import MANIFEST, PACKAGE, read_manifest
from effbench.export.pipeline import ModelSource, artifact_ref, build_artifact, coreml_artifact
from effbench.harness.config import RunConfig
from effbench.models.registry import resolve
from tests.conftest import FAST, bench

pytest.importorskip("coremltools")

BAD = "tests.backends.bad_models"


def source(model: str, input_size: int | None = None) -> ModelSource:
    return ModelSource(resolve(model, input_size))


@pytest.mark.slow
def test_export_mobilenetv3_fp16_is_a_cached_mlpackage():
    src = source("mobilenetv3_large_100")
    art = coreml_artifact(src, (1, 3, 224, 224), precision="fp16")
    assert art.format == "coreml" and art.path.name == MANIFEST and art.path.is_file()
    package = art.path.parent / PACKAGE
    assert package.is_dir() and (package / "Manifest.json").is_file()
    assert art.bytes > 5_000_000  # the weights are inside the package directory
    manifest = json.loads(art.path.read_text())
    assert manifest["precision"] == "fp16" and manifest["compute_precision"] == "FLOAT16"
    assert manifest["export_path"] == "torch.export" and manifest["package"] == PACKAGE
    assert art.meta["export_path"] == "torch.export" and art.meta["package_path"] == str(package)
    assert art.cached is False and art.export_s > 0
    again = coreml_artifact(src, (1, 3, 224, 224), precision="fp16")
    assert again.cached is True and again.path == art.path and again.meta["export_path"] == "torch.export"
    # the package really is an ML Program with fp32 input/output named as the manifest says
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    assert spec.WhichOneof("Type") == "mlProgram"
    assert [i.name for i in spec.description.input] == ["input"]
    assert [o.name for o in spec.description.output] == ["output"]


@pytest.mark.slow
def test_efficientvit_converts_with_the_alias_workaround_recorded():
    """torch.export of EfficientViT has an aten.alias node that coremltools cannot convert
    ("Unsupported fx node alias", apple/coremltools#2517): removed, and said so."""
    art = coreml_artifact(source("efficientvit_m0"), (1, 3, 224, 224))
    assert art.meta["export_path"] == "torch.export"
    assert any("aten.alias" in w and "coremltools#2517" in w for w in art.meta["workarounds"])


def test_failing_conversion_is_a_failed_cell_with_the_converters_message(monkeypatch):
    """Faking macOS so the cell gets as far as the export; svdvals converts on neither path."""
    from effbench.harness.scheduler import run_cells

    monkeypatch.setattr(coreml_backend, "_on_macos", lambda: True)
    cfg = RunConfig(model=f"{BAD}:svd_net", backend="coreml", input_size=16, parity=False)
    (r,) = run_cells([cfg], isolate=False, show_progress=False)
    assert r.status == "failed"
    assert r.error.startswith("Core ML conversion failed: Unsupported fx node linalg_svdvals")
    assert "torchscript-trace fallback failed too" in r.error and "linalg_svdvals" in r.error.split("too:")[1]
    assert "\n" not in r.error


def test_build_artifact_raises_runfailed_with_the_first_line():
    with pytest.raises(RunFailed, match=r"^Core ML conversion failed: Unsupported fx node linalg_svdvals"):
        build_artifact(get_backend("coreml"), source(f"{BAD}:svd_net", 16), (1, 3, 16, 16))


def test_torchscript_fallback_is_recorded():
    art = coreml_artifact(source(f"{BAD}:branchy_net", 16), (1, 3, 16, 16))
    path = art.meta["export_path"]
    assert path.startswith("torchscript-trace (fallback after: ") and "data-dependent" in path
    assert read_manifest(art.path)["failed_attempts"][0]["path"] == "torch.export"


def test_faked_macos_load_records_compute_units_and_export_path(monkeypatch):
    monkeypatch.setattr(core_coreml, "on_macos", lambda: True)
    art = coreml_artifact(source(f"{BAD}:branchy_net", 16), (1, 3, 16, 16))
    backend = coreml_backend.CoreMLBackend()
    opts = backend.parse_options({"compute_units": "cpu_and_ne"})
    cfg = RunConfig(model=f"{BAD}:branchy_net", backend="coreml", input_size=16)
    settings = MeasureSettings(
        runtime="coreml", input_shape=[1, 3, 16, 16], runtime_options=backend.runtime_options(opts, cfg)
    )
    session = backend.open(artifact_ref(art), settings)
    assert session.runtime_info["compute_units"] == "CPU_AND_NE"
    assert session.runtime_info["export_path"].startswith("torchscript-trace")
    assert session.precision_ran == "fp32"
    with pytest.raises(UsageError, match="compute_units='tpu' for coreml: accepted: 'all', 'cpu_only'"):
        backend.parse_options({"compute_units": "tpu"})


def test_compute_units_names():
    parse = coreml_backend.CoreMLBackend().parse_options
    assert parse({}).compute_units == "all"
    assert parse({"compute_units": "CPU_ONLY"}).compute_units == "cpu_only"
    assert parse({"compute_units": "ane"}).compute_units == "cpu_and_ne"


def test_onnx_models_cannot_be_converted(tmp_path):
    import torch

    path = tmp_path / "tiny.onnx"
    torch.onnx.export(
        torch.nn.Conv2d(3, 4, 3), (torch.randn(1, 3, 8, 8),), str(path), input_names=["input"], dynamo=False
    )
    with pytest.raises(UsageError, match="needs a PyTorch model"):
        coreml_artifact(source(str(path)), (1, 3, 8, 8))


def test_bench_backends_says_coreml_needs_macos():
    r = bench("backends")
    assert r.returncode == 0, r.output
    row = next(line for line in r.stdout.splitlines() if "coreml" in line)
    assert "mlpackage" in row and "needs macOS" in row


@pytest.mark.parametrize("name", ["coreml", "mlpackage"])
def test_bench_run_coreml_here_is_one_line_naming_macos(name):
    r = bench("run", "--model", "mobilenetv3_small_050", "--backend", name, *FAST, "--no-store")
    assert r.returncode == 2, r.output
    assert "needs macOS" in r.output and "Traceback" not in r.output
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
