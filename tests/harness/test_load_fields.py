"""Load time in two record fields: cold (the artifact was made for this cell, then loaded) and
cached (loaded from an artifact an earlier cell made), for any backend."""

from __future__ import annotations

import pytest

from effbench.harness.config import RunConfig
from effbench.harness.launchers.local import InProcess
from effbench.harness.prepare import check_cell, prepare
from effbench.harness.result import Result

QUICK = dict(duration_s=0.2, warmup_s=0.05, warmup_iters=2, min_iters=3, threads=1)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_first_cell_loads_cold_and_the_next_one_cached(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path / "cache"))  # nothing made yet
    cfg = RunConfig(model="tiny_models:tiny_cnn", input_size=32, backend=backend, **QUICK)
    launcher = InProcess()
    first, second = (launcher.run(prepare(check_cell(cfg)), lambda m: None) for _ in range(2))
    assert first.ok and second.ok, (first.error, second.error)
    t1, t2 = first.timing, second.timing
    assert first.artifact_cached is False and t1.load_cached_s is None
    assert t1.export_s is not None and t1.load_s is not None and t1.load_cold_s is not None
    assert t1.load_cold_s == pytest.approx(t1.export_s + t1.load_s, abs=1e-3) and t1.load_cold_s > t1.load_s
    assert second.artifact_cached is True and t2.load_cold_s is None and t2.load_cached_s == t2.load_s
    record = second.to_dict()
    assert record["load_cached_s"] == t2.load_cached_s and record["load_cold_s"] is None
    assert Result.from_dict(first.to_dict()).timing.load_cold_s == t1.load_cold_s
