"""A cached cell costs what it measures: no PyTorch model is built and neither torch nor timm is
imported — not in the worker, not in `bench run` itself — for an ONNX Runtime or OpenVINO cell
whose artifact, graph analysis and parity reference are cached."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import FAST, read_records

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone

RUN = """
import sys
from effbench.cli import main
rc = main(sys.argv[1:])
print("HEAVY=" + ",".join(m for m in ("torch", "timm") if m in sys.modules))
sys.exit(rc)
"""


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_cached_cell_imports_no_torch_anywhere(backend, tmp_path):
    out = tmp_path / "r.json"
    args = [
        "run",
        "--model",
        "mobilenetv3_small_050",
        "--backend",
        backend,
        *FAST,
        "--db",
        str(tmp_path / "r.db"),
        "--out",
        str(out),
    ]
    first = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    (rec,) = read_records(out)
    assert rec["artifact_cached"] is True and rec["parity"]["ok"] is True and rec["macs"] > 0
    assert rec["extra"]["imported"] == {"torch": False, "timm": False}  # the worker
    assert "HEAVY=\n" in second.stdout  # the harness process
    assert rec["timing"]["prepare_s"] < rec["timing"]["measure_s"] + 1.0
    assert json.dumps(rec["timing"]) and rec["timing"]["cell_wall_s"] >= rec["timing"]["measure_s"]
