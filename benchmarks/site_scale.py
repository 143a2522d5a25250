"""Does `bench site build` scale? A store of N generated results (100,000 by default) is built into a site;
prints the build time against the one-minute target and the heaviest page (its HTML plus every local
file it loads) against the 2 MB target. The build's CPU time (user + sys) is printed beside its wall time
with the machine's load average: on a shared machine the wall time says more about the neighbours.

The results are generated, not measured (no machine measures 100,000 cells in a test): each cell's
history is a level with ~2% run-to-run noise, and every fifth cell takes a step of +20% (a regression)
or -15% at a known run, so the site's change points can be checked against the truth. Each record
keeps 60 raw samples, as a short real run would.

    .venv/bin/python benchmarks/site_scale.py [--results 100000] [--runs 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from effbench.harness.result import RECORD_SCHEMA
from effbench.harness.store import Store

MODELS = ["efficientvit_m0", "efficientvit_m5", "mobilenetv3_large_100", "resnet50", "fastvit_t8", "repvit_m1_0"]
DEVICES = ["cpu", "pi5", "jetson-orin", "rk3588", "x86-laptop"]
BACKENDS = ["onnxruntime", "openvino", "torch"]
PRECISIONS = ["fp32", "int8"]
BATCHES = [1, 8]
START = _dt.datetime(2026, 6, 1)
SAMPLES = 60
STEP_AT = 0.6  # the step lands at this fraction of a stepping cell's runs


def cells(n_cells: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n_cells):
        combo = (
            MODELS[i % len(MODELS)],
            DEVICES[(i // len(MODELS)) % len(DEVICES)],
            BACKENDS[(i // (len(MODELS) * len(DEVICES))) % len(BACKENDS)],
            PRECISIONS[(i // (len(MODELS) * len(DEVICES) * len(BACKENDS))) % len(PRECISIONS)],
            BATCHES[(i // (len(MODELS) * len(DEVICES) * len(BACKENDS) * len(PRECISIONS))) % len(BATCHES)],
        )
        resolution = 224 + 32 * (i // (len(MODELS) * len(DEVICES) * len(BACKENDS) * len(PRECISIONS) * len(BATCHES)))
        step = {0: 1.20, 2: 0.85}.get(i % 5, 1.0)
        out.append(
            {
                "model": combo[0],
                "device": combo[1],
                "backend": combo[2],
                "precision": combo[3],
                "batch_size": combo[4],
                "input_size": resolution,
                "level": 2.0 + (i % 17) * 1.3,
                "step": step,
                "key": hashlib.sha256(f"cell{i}".encode()).hexdigest()[:16],
            }
        )
    return out


def record(cell: dict[str, Any], run: int, runs: int, rng: np.random.Generator) -> dict[str, Any]:
    level = cell["level"] * (cell["step"] if run >= int(runs * STEP_AT) else 1.0) * (1 + rng.normal(0, 0.02))
    samples = np.sort(level * rng.lognormal(0, 0.03, SAMPLES))
    rng.shuffle(samples)
    med = float(np.median(samples))
    half = 1.96 * 1.2533 * float(np.std(samples)) / np.sqrt(SAMPLES)
    commit = hashlib.sha1(f"commit{run}".encode()).hexdigest()
    return {
        "schema": RECORD_SCHEMA,
        "id": uuid.uuid4().hex,
        "created_at": (START + _dt.timedelta(hours=12 * run)).isoformat(timespec="seconds"),
        "config_hash": cell["key"],
        "model": cell["model"],
        "backend": cell["backend"],
        "device": cell["device"],
        "scenario": "latency",
        "batch_size": cell["batch_size"],
        "precision": cell["precision"],
        "precision_ran": cell["precision"],
        "status": "ok",
        "tag": f"v0.{run // 10}" if run % 10 == 0 else "",
        "latency_ms": {
            "median": med,
            "ci95_low": med - half,
            "ci95_high": med + half,
            "p99": float(np.percentile(samples, 99)),
            "n": SAMPLES,
        },
        "throughput_per_s": cell["batch_size"] * 1000 / med,
        "samples_ms": [round(float(v), 5) for v in samples],
        "config": {"input_size": cell["input_size"], "threads": 2, "batch_size": cell["batch_size"]},
        "env": {
            "git_commit": commit,
            "cpu_model": f"generated {cell['device']}",
            "versions": {cell["backend"]: "1.0." + str(run // 25)},
        },
    }


def write_store(db: str, results: int, runs: int, seed: int = 0) -> list[dict[str, Any]]:
    """A SQLite store of `results` generated results, `runs` per cell; returns the cells (with their truth)."""
    rng = np.random.default_rng(seed)
    n_cells = max(1, results // runs)
    table = cells(n_cells)
    store = Store(db)
    batch: list[dict[str, Any]] = []
    for run in range(runs):
        for cell in table:
            batch.append(record(cell, run, runs, rng))
            if len(batch) >= 5000:
                store.add_many(batch)
                batch = []
    if batch:
        store.add_many(batch)
    return table


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def page_weight(site: Path, page: Path) -> int:
    """Bytes a browser loads for a page: its HTML and every local file it references."""
    html = page.read_text(encoding="utf-8")
    total = len(html.encode("utf-8"))
    for ref in set(re.findall(r'(?:src|href)="([^"#?:]+)"', html)):
        target = (page.parent / ref).resolve()
        if target.is_file() and target.suffix in (".js", ".css"):
            total += target.stat().st_size
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100, help="runs per cell")
    ap.add_argument("--keep", type=Path, help="build the site here and keep it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="site-scale-"))
    try:
        db = str(tmp / "results.db")
        t0 = time.perf_counter()
        table = write_store(db, args.results, args.runs)
        print(f"generated {args.results} results in {len(table)} cells: {time.perf_counter() - t0:.1f} s")
        out = args.keep or tmp / "site"
        bench = Path(sys.executable).parent / "bench"
        t0, cpu0 = time.perf_counter(), _children_cpu()
        proc = subprocess.run([str(bench), "site", "build", str(out), "--db", db], capture_output=True, text=True)
        build_s, cpu_s = time.perf_counter() - t0, _children_cpu() - cpu0
        print(proc.stdout.strip() or proc.stderr.strip())
        if proc.returncode != 0:
            return 1
        pages = list(out.rglob("*.html"))
        weights = sorted(((page_weight(out, p), p) for p in pages), reverse=True)
        heaviest, heaviest_page = weights[0]
        index = json.loads((out / "data" / "index.json").read_text())
        stepped = {c["key"]: c["step"] for c in table}
        found = {c["key"] for c in index["cells"] if c["real_changes"]}
        should = {k for k, s in stepped.items() if s != 1.0}
        print(
            f"build: {build_s:.1f} s wall for {args.results} results = {build_s / 60:.2f} of the 1-minute target "
            f"({'within' if build_s < 60 else 'OVER'}); {cpu_s:.1f} s CPU = {cpu_s / 60:.2f} of it; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(
            f"heaviest page: {heaviest_page.relative_to(out)} loads {heaviest / 1e6:.2f} MB with its assets = "
            f"{heaviest / 2e6:.2f} of the 2 MB target ({'within' if heaviest <= 2e6 else 'OVER'}); "
            f"{len(pages)} pages"
        )
        print(
            f"change points: {len(found & should)} of {len(should)} stepped cells found, "
            f"{len(found - should)} of {len(stepped) - len(should)} flat cells with a real change"
        )
        return 0 if build_s < 60 and heaviest <= 2e6 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
