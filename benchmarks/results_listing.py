"""`bench results --format json` on a large store: typed results with the limit in the query (how it
reads now) against every stored JSON record read, then sliced (how it read before), interleaved.

    .venv/bin/python benchmarks/results_listing.py [--results 3000] [--samples 2000] [--rounds 5]

Prints new/old for the default --limit 50 and for --limit 0 (all); the two outputs are checked equal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from effbench.core.stats import summarize
from effbench.harness.result import Result
from effbench.harness.store import Store


def fill(store: Store, n: int, samples: int) -> None:
    raw = tuple(float(j % 97) for j in range(samples))
    stamp = "2026-11-01T{:02d}:{:02d}:{:02d}+00:00"
    store.add_many(
        Result(
            model=f"m{i % 20}",
            backend="onnxruntime",
            samples_ms=raw,
            latency=summarize(raw),
            created_at=stamp.format(i // 3600, i // 60 % 60, i % 60),
        )
        for i in range(n)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = Store(str(Path(d) / "r.db"))
        fill(store, args.results, args.samples)

        def before(limit: int) -> str:
            records = store.records()
            return json.dumps(records[:limit] if limit else records, indent=1, default=str)

        def now(limit: int) -> str:
            return json.dumps([r.to_dict() for r in store.results(limit=limit)], indent=1, default=str)

        for limit in (50, 0):
            if before(limit) != now(limit):
                raise SystemExit(f"--limit {limit}: the two listings differ")
            times: dict[str, list[float]] = {"before": [], "now": []}
            for _ in range(args.rounds):
                for name, read in (("before", before), ("now", now)):
                    t0 = time.perf_counter()
                    read(limit)
                    times[name].append(time.perf_counter() - t0)
            old, new = statistics.median(times["before"]), statistics.median(times["now"])
            print(f"--limit {limit} of {args.results}: before {old:.3f} s, now {new:.3f} s, now/before {new / old:.3f}")


if __name__ == "__main__":
    main()
