"""A real results store for the report tests: two small models on two backends, run through the CLI.

Built once per session (about a minute on a busy 2-core machine):

- `bench sweep` of efficientvit_m0 and mobilenetv3_small_050 on onnxruntime and openvino with the FAST
  timing flags: 4 ok cells with raw samples, parity against PyTorch and the runner's roofline analysis
  (`extra.analysis`, from this machine's CPU peaks in the device catalog);
- `bench sweep` of efficientvit_m0 on onnxruntime at fp16, which ONNX Runtime on CPU does not offer: the
  sweep records it as a real non-ok cell with its reason (the failed cell of the matrix);
- `bench profile` of efficientvit_m0 on onnxruntime: a timed cell plus a profile record with measured
  per-layer times (skipped, with the views then showing bounds only, where `bench profile` is absent);
- one hostile record: a copy of a real result whose model, tag and a warning are HTML/JS payloads. The
  CLI only accepts model names it can resolve (card, timm:, a file, a factory), so such a name reaches
  the store through a record written directly (a third-party backend, an imported JSON, a file path):
  the report must show it as text and run nothing. It carries extra.measured_top1 so it is also a
  point of the speed-accuracy plot.

The sweeps run `--in-process` (one process for all cells) to keep the session short; the cells are
measured the same way.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST, bench

XSS_MODEL = "<script>alert(1)</script>"
XSS_TAG = "<img src=x onerror=alert(2)>"
XSS_WARNING = "</script><script>alert(3)</script>"
MODELS = ["efficientvit_m0", "mobilenetv3_small_050"]
BACKENDS = ["onnxruntime", "openvino"]

_FAST_KEYS = {
    "--duration": "duration_s",
    "--warmup": "warmup_s",
    "--warmup-iters": "warmup_iters",
    "--min-iters": "min_iters",
}


def fast_sweep_options() -> dict:
    """The FAST command-line flags as sweep-file keys."""
    opts = {}
    for flag, value in zip(FAST[::2], FAST[1::2]):
        key = _FAST_KEYS[flag]
        opts[key] = int(value) if key.endswith("iters") else float(value)
    return opts


@dataclass
class ReportStore:
    db: str
    records: list[dict]

    @property
    def speed_points(self) -> int:
        """ok, latency scenario, batch 1 results: one point each in the speed-accuracy latency plot."""
        return sum(
            r["status"] == "ok" and r["scenario"] == "latency" and not r["profiled"] and r["batch_size"] == 1
            for r in self.records
        )

    @property
    def cells(self) -> set[tuple]:
        return {
            (r["model"], r["backend"], r["device"], r["scenario"], r["batch_size"], r["precision"])
            for r in self.records
            if not r["profiled"]
        }

    @property
    def profiled(self) -> bool:
        return any(r["profiled"] and r["status"] == "ok" for r in self.records)


def _sweep(tmp: Path, name: str, spec: dict, db: str) -> None:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = bench("sweep", path, "--db", db, "--in-process", timeout=900)
    assert res.returncode == 0, res.output


@pytest.fixture(scope="session")
def report_store(tmp_path_factory) -> ReportStore:
    from effbench.harness.store import Store

    tmp = tmp_path_factory.mktemp("report-store")
    db = str(tmp / "results.db")
    _sweep(tmp, "matrix", {"models": MODELS, "backends": BACKENDS, **fast_sweep_options()}, db)
    _sweep(
        tmp,
        "fp16",
        {"models": ["efficientvit_m0"], "backends": ["onnxruntime"], "precisions": ["fp16"], **fast_sweep_options()},
        db,
    )
    if bench("profile", "--help").returncode == 0:
        res = bench("profile", "--model", "efficientvit_m0", "--backend", "onnxruntime", *FAST, "--db", db, timeout=900)
        assert res.returncode == 0, res.output

    store = Store(db)
    runs = store.records()
    ok = [r for r in runs if r["status"] == "ok" and r["scenario"] == "latency"]
    assert len(ok) >= 4, [(r["model"], r["backend"], r["status"], r.get("error")) for r in runs]
    # isolated workers record it as "skipped", in-process runs as "failed": either is a non-ok cell with a reason
    assert any(r["status"] != "ok" and "fp16" in (r.get("error") or "") for r in runs)

    hostile = copy.deepcopy(
        next(r for r in ok if r["model"] == "mobilenetv3_small_050" and r["backend"] == "onnxruntime")
    )
    hostile.update(
        id=uuid.uuid4().hex, model=XSS_MODEL, tag=XSS_TAG, warnings=list(hostile.get("warnings") or []) + [XSS_WARNING]
    )
    hostile.setdefault("extra", {})["measured_top1"] = 55.5
    store.add(hostile)
    return ReportStore(db=db, records=store.records())


@pytest.fixture(scope="session")
def report_html(report_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "index.html"
    res = bench("report", "--db", report_store.db, "-o", out)
    assert res.returncode == 0, res.output
    assert out.exists() and "wrote" in res.output
    return out
