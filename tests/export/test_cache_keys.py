"""The artifact cache key needs no model build where the name determines the weights, and misses
whenever the weights would differ: another seed, another timm version, another weights file, an
edited factory."""

from __future__ import annotations

import shutil
import sys

import pytest

from effbench.export.cache import NotCached, cached_only
from effbench.export.pipeline import ModelSource, onnx_artifact
from effbench.models import loaders
from effbench.models.registry import resolve

SHAPE = (1, 3, 32, 32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cached(spec, seed=0) -> bool:
    try:
        with cached_only():
            onnx_artifact(ModelSource(spec, seed=seed), SHAPE)
        return True
    except NotCached:
        return False


def test_a_cached_timm_artifact_is_found_without_building_the_model(cache, monkeypatch):
    spec = resolve("mobilenetv3_small_050", 32)
    first = onnx_artifact(ModelSource(spec), SHAPE)
    assert not first.cached and first.meta["params"] > 100_000

    def no_build(*a, **k):
        raise AssertionError("the model was built to find a cached artifact")

    monkeypatch.setattr(loaders, "build_torch_model", no_build)
    again = onnx_artifact(ModelSource(resolve("mobilenetv3_small_050", 32)), SHAPE)
    assert again.cached and again.path == first.path
    assert not _cached(spec, seed=1)  # another seed: other random weights
    real = loaders._dist
    monkeypatch.setattr(loaders, "_dist", lambda name: "0.0.1" if name == "timm" else real(name))
    assert not _cached(spec)  # another timm version may initialise differently


def test_a_changed_weights_file_misses_the_cache(cache, tmp_path):
    import torch
    from tiny_models import tiny_cnn

    weights = tmp_path / "w.pth"
    torch.manual_seed(1)
    torch.save(tiny_cnn().state_dict(), weights)
    spec = resolve("tiny_models:tiny_cnn", 32, str(weights))
    art = onnx_artifact(ModelSource(spec), SHAPE)
    assert _cached(resolve("tiny_models:tiny_cnn", 32, str(weights)))
    torch.manual_seed(2)
    torch.save({"state_dict": tiny_cnn().state_dict()}, weights)  # a checkpoint dict this time
    assert not _cached(resolve("tiny_models:tiny_cnn", 32, str(weights)))
    again = onnx_artifact(ModelSource(resolve("tiny_models:tiny_cnn", 32, str(weights))), SHAPE)
    assert again.key != art.key and not again.cached


def test_an_edited_factory_misses_the_cache(cache, tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text("import torch\nWIDTH = 4\n")
    (pkg / "nets.py").write_text(
        "import torch\nfrom userpkg.layers import WIDTH\ndef net():\n    return torch.nn.Conv2d(3, WIDTH, 3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = resolve("userpkg.nets:net", 32)
    onnx_artifact(ModelSource(spec), SHAPE)
    assert _cached(resolve("userpkg.nets:net", 32))
    (pkg / "layers.py").write_text("import torch\nWIDTH = 6\n")  # a file the factory imports
    for name in [m for m in sys.modules if m.startswith("userpkg")]:
        del sys.modules[name]
    assert not _cached(resolve("userpkg.nets:net", 32))


def test_an_onnx_file_is_keyed_by_its_content(cache, tmp_path):
    import torch
    from tiny_models import tiny_cnn

    path = tmp_path / "m.onnx"
    torch.onnx.export(tiny_cnn().eval(), (torch.randn(*SHAPE),), str(path), dynamo=False, input_names=["x"])
    first = onnx_artifact(ModelSource(resolve(str(path))), SHAPE)
    assert first.meta["params"] > 0 and _cached(resolve(str(path)))
    shutil.copy(path, tmp_path / "copy.onnx")
    torch.onnx.export(tiny_cnn().eval(), (torch.randn(*SHAPE),), str(path), dynamo=False, input_names=["x"])
    assert not _cached(resolve(str(path)))  # new weights in the same file name
