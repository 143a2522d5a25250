"""A factory's own data config (timm's pretrained_cfg convention) sets the input size and the
preprocessing when no option does; it is learnt once and cached, and the record says where each
value came from."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from effbench.accuracy.preprocess import IMAGENET_MEAN, resolve_preprocess
from effbench.models.data_config import factory_data_config, input_source, with_data_config
from effbench.models.registry import resolve
from tests.conftest import FAST, PLUGIN_ENV, read_records

DECLARING = "tiny_models:tiny_cnn_32"  # declares input_size (3, 32, 32), mean 0.5, std 0.25, crop 1.0, bicubic

# the factory's module imports torch when it is checked; what a cached cell must not do is build it
RUN = """
import sys
from effbench.cli import main
from effbench.models import data_config, loaders
builds = []
real, learn = loaders.build_torch_model, data_config._learn
loaders.build_torch_model = lambda *a, **k: builds.append(1) or real(*a, **k)
data_config._learn = lambda *a, **k: builds.append(1) or learn(*a, **k)
rc = main(sys.argv[1:])
print(f"BUILDS={len(builds)}")
sys.exit(rc)
"""


def test_declared_input_size_is_used_unless_the_option_is_given():
    spec = with_data_config(resolve(DECLARING), None)
    assert spec.input_shape == (3, 32, 32)
    assert input_source(spec, None) == f"data config of {DECLARING}"
    given = with_data_config(resolve(DECLARING, 48), 48)
    assert given.input_shape == (3, 48, 48) and input_source(given, 48) == "--input-size"


def test_the_predictor_sees_a_factory_at_its_declared_size():
    from effbench.predict.build import zoo_model

    assert zoo_model(DECLARING, None).input_shape == [1, 3, 32, 32]


def test_a_factory_that_declares_nothing_keeps_the_defaults():
    spec = with_data_config(resolve("tiny_models:tiny_cnn"), None)
    assert spec.input_shape == (3, 224, 224) and input_source(spec, None) == "defaults"
    assert spec.extra["data_config"] == {}
    pre = resolve_preprocess((1, *spec.input_shape), data_config=spec.extra["data_config"])
    assert pre.source == "defaults" and pre.mean == IMAGENET_MEAN


def test_declared_preprocessing_and_options_over_it():
    cfg = with_data_config(resolve(DECLARING), None).extra["data_config"]
    pre = resolve_preprocess((1, 3, 32, 32), data_config=cfg)
    assert (pre.mean, pre.std, pre.crop_pct, pre.interpolation) == ((0.5,) * 3, (0.25,) * 3, 1.0, "bicubic")
    assert pre.source == f"data config of {DECLARING}"
    over = resolve_preprocess((1, 3, 32, 32), data_config=cfg, crop_pct=0.9)
    assert over.crop_pct == 0.9 and over.mean == (0.5,) * 3 and over.source.endswith("+ options")


def test_the_config_is_learnt_once_then_read_from_the_cache(monkeypatch):
    spec = resolve(DECLARING)
    first = factory_data_config(spec)

    def no_build(*a, **k):
        raise AssertionError("a cached data config must not build the factory")

    monkeypatch.setattr("effbench.models.data_config._learn", no_build)
    assert factory_data_config(spec) == first and first["input_size"] == [3, 32, 32]


def test_a_factory_that_fails_to_build_leaves_the_defaults_and_the_harness_standing():
    """The learning build runs in its own process: a factory that fails there (here one returning an
    int; a crash or a hang alike) costs only the answer, and the cell's own build reports the fault."""
    spec = resolve("tiny_models:not_a_module")
    assert factory_data_config(spec) is None
    out = with_data_config(spec, None)
    assert out.input_shape == (3, 224, 224) and input_source(out, None).startswith("defaults (the factory could not")


@pytest.mark.slow
@pytest.mark.serial  # two real runs; the second must build nothing
def test_run_times_the_declared_size_and_a_cached_cell_builds_nothing(tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "--model", DECLARING, "--backend", "ort", *FAST, "--db", str(tmp_path / "r.db"), "--out", str(out)]
    # a cache of its own: another test in this process may already have learnt the factory's config
    env = {**os.environ, **PLUGIN_ENV, "EFFBENCH_CACHE": str(tmp_path / "cache")}
    runs = [
        subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=600)
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stdout + r.stderr
    assert "BUILDS=0" not in runs[0].stdout  # the first run learns the config (the export runs in its own process)
    (rec,) = read_records(out)
    assert rec["extra"]["settings"]["input_shape"] == [1, 3, 32, 32]
    data = rec["extra"]["data_config"]
    assert data["input_size"] == [3, 32, 32] and data["input_size_source"] == f"data config of {DECLARING}"
    assert data["declared"]["mean"] == [0.5, 0.5, 0.5]
    assert rec["parity"]["ok"] and rec["artifact_cached"] is True
    assert "BUILDS=0" in r.stdout  # the second run: data config, artifact and reference all from the cache
