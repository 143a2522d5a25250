"""Time to a result: a default `bench run` of efficientvit_m5 on OpenVINO with a warm artifact
cache, wall-clock seconds from command start to stored result, and the CI half-width it reached."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        db = f"{d}/r.db"
        cmd = [str(BIN / "bench"), "run", "--model", "efficientvit_m5", "--backend", "openvino", "--db", db]
        subprocess.run(cmd, capture_output=True)  # warms the artifact cache
        for r in range(3):
            out = Path(d) / f"r{r}.json"
            t0 = time.perf_counter()
            proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            rec = json.loads(out.read_text())[0]
            lat = rec["latency_ms"]
            half = (lat["ci95_high"] - lat["ci95_low"]) / 2 / lat["median"]
            print(
                f"round {r + 1}: {wall:.1f} s to a stored result; median {lat['median']:.3f} ms, "
                f"95% CI half-width ±{half:.2%}, {rec['iterations']} iterations, "
                f"artifact cached: {rec['artifact_cached']}"
            )


if __name__ == "__main__":
    main()
