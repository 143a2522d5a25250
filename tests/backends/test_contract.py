"""The backend contract, over every registered backend (and over a third-party backend written as
docs/extending.md says: one file plus one entry point)."""

from __future__ import annotations

import numpy as np
import pytest

from effbench.backends.base import Backend, BackendOptions
from effbench.backends.registry import all_backends, canonical_name, load_ref
from effbench.core.session import Session
from effbench.core.settings import MeasureSettings
from effbench.errors import UsageError
from effbench.harness.config import PRECISIONS, RunConfig
from effbench.harness.options import describe
from effbench.harness.prepare import check_cell, prepare
from tests.conftest import ROOT, TINY_CNN, bench, read_records

BACKENDS = sorted(all_backends())


@pytest.mark.parametrize("name", BACKENDS)
def test_declarations(name):
    b = all_backends()[name]
    assert isinstance(b, Backend) and b.name == name
    assert all(canonical_name(a) == name for a in (name, *b.aliases))
    assert callable(load_ref(b.exporter_ref()))
    if b.quantizer:  # a backend that declares int8 names the quantiser that makes it
        assert "int8" in b.precisions and b.int8_method and callable(load_ref(b.quantizer))
    traits = b.traits()
    assert traits["format"] == b.artifact_format and traits["precisions"] == list(b.precisions)
    assert set(b.precisions) <= set(PRECISIONS) and b.precisions
    assert issubclass(b.Options, BackendOptions) and b.Options.model_config.get("extra") == "forbid"
    b.parse_options({})  # every option has a default
    with pytest.raises(UsageError, match=f"unknown option 'no_such_option' for {name}"):
        b.parse_options({"no_such_option": "1"})
    assert [r["option"] for r in describe(b)]
    reason = b.unavailable_reason("cpu")
    assert reason is None or (isinstance(reason, str) and reason)


CPU_USABLE = [n for n in BACKENDS if all_backends()[n].unavailable_reason("cpu") is None]


@pytest.mark.parametrize("name", CPU_USABLE)
def test_session_contract_on_a_tiny_model(name):
    cfg = RunConfig(model="tiny_models:tiny_cnn", backend=name, input_size=32, threads=1)
    cell = prepare(check_cell(cfg))
    backend = all_backends()[name]
    settings = MeasureSettings.from_dict({**cell.settings.to_dict(), "duration_s": 0.01})
    session = backend.open(cell.artifact, settings)
    assert isinstance(session, Session)
    x = np.load(cell.inputs_path)
    session.bind({cell.input_name: x})
    buf = np.zeros(5, dtype=np.int64)
    session.timed_loop(5, buf, 0)
    assert (buf > 0).all()
    outs = session.outputs()
    if backend.artifact_format != "none":
        assert outs and outs[0].shape == (1, 10)
        assert np.allclose(outs[0], np.load(cell.reference_path), rtol=1e-3, atol=1e-4)
    assert session.precision_ran == "fp32" and isinstance(session.runtime_info, dict)
    session.close()


def test_a_backend_in_one_file_plus_one_entry_point(tmp_path, db):
    dist = tmp_path / "onnx_reference-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: onnx-reference\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[effbench.backends]\nonnx-reference = onnx_reference:ReferenceBackend\n")
    import os

    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path), str(ROOT / "examples" / "extending"), os.environ.get("PYTHONPATH", "")]
        )
    }
    r = bench("backends", "--options", "onnxref", env=env)
    assert r.returncode == 0 and "verbose" in r.stdout, r.output
    out = tmp_path / "r.json"
    r = bench(
        "run",
        *TINY_CNN,
        "--backend",
        "onnxref",
        "--duration",
        "0.2",
        "--warmup",
        "0.05",
        "--min-iters",
        "3",
        "--db",
        db,
        "--out",
        out,
        env=env,
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["backend"] == "onnx-reference" and rec["status"] == "ok" and rec["parity"]["ok"] is True
    assert rec["macs"] > 0  # the graph analysis came with the ONNX artifact
    r = bench("run", "--model", "tiny_models:tiny_cnn", "--backend", "onnxref", "--opt", "verbose=9", env=env)
    assert r.returncode == 2 and "invalid --opt verbose='9' for onnx-reference" in r.stderr
