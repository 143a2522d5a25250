"""Helpers shared by the benchmark scripts (not tests: they print ratios measured side by side)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def bench_run(*args: str) -> dict:
    """Run `bench run ... --out` and return its single record."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.json"
        proc = subprocess.run(
            [str(BIN / "bench"), "run", *args, "--out", str(out), "--no-store"], capture_output=True, text=True
        )
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"bench run failed:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text())[0]


def benchmark_app(*args: str) -> dict:
    """Run OpenVINO's benchmark_app and parse its median latency (ms) and throughput (FPS)."""
    proc = subprocess.run([str(BIN / "benchmark_app"), *args], capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    med = re.search(r"Median:\s+([\d.]+)\s*ms", text)
    fps = re.search(r"Throughput:\s+([\d.]+)\s*FPS", text)
    if proc.returncode != 0 or not fps:
        raise SystemExit(f"benchmark_app failed:\n{text[-2000:]}")
    return {"median_ms": float(med.group(1)) if med else None, "fps": float(fps.group(1)), "log": text}


def geomean(values: list[float]) -> float:
    return statistics.geometric_mean(values)
