"""What MLPerf LoadGen adds to a latency: effbench's own latency scenario against LoadGen
SingleStream, interleaved (A B A B ...) on one session of one model, so both see the same drift.

LoadGen puts a queue and a Python callback between "query issued" and "query complete"; the
latency scenario times `session.run()` alone. Printed per round: both medians and their ratio
(LoadGen's query latency / effbench's inference latency), LoadGen's p90 and its QPS with and
without its own overhead; at the end the median ratio over the rounds and the median difference in
microseconds. `--backend null` isolates LoadGen's own cost (the session does nothing). On a CPU
shared with other work, a loop that never sleeps (effbench's) is preempted more than one that waits
between queries (LoadGen's SUT thread): compare on an idle machine.

    .venv/bin/python benchmarks/loadgen_overhead.py [--model efficientvit_m0] [--backend ort] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import numpy as np

from effbench.backends.registry import get_backend
from effbench.commands.run import parse_run_args
from effbench.core.scenarios import Context, get_scenario
from effbench.core.timing import warmup
from effbench.harness.prepare import check_cell, prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientvit_m0")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    cell = parse_run_args(f"--model {a.model} --backend {a.backend} --threads {a.threads} --no-parity")[0]
    pc = prepare(check_cell(cell))
    session = get_backend(pc.backend).open(pc.artifact, pc.settings)
    session.bind({pc.input_name: np.load(pc.inputs_path)})
    ctx = Context(lambda *x: None)
    base = pc.settings
    base.duration_s, base.min_iters = a.seconds, 1
    warmup(session, 1.0, 10)
    ratios: list[float] = []
    added: list[float] = []
    with tempfile.TemporaryDirectory() as logs:
        for r in range(a.rounds):
            base.scenario = "latency"
            own = get_scenario("latency").measure(session, base, ctx)
            base.scenario, base.loadgen_dir = "singlestream", f"{logs}/round{r}"
            lg = get_scenario("singlestream").measure(session, base, ctx)
            own_ms = float(np.median(own.samples_ns)) / 1e6
            lg_ms = float(np.median(lg.samples_ns)) / 1e6
            res = lg.summary["loadgen"]
            ratios.append(lg_ms / own_ms)
            added.append((lg_ms - own_ms) * 1000)
            print(
                f"round {r + 1}: effbench latency median {own_ms:.4f} ms; LoadGen SingleStream median {lg_ms:.4f} ms "
                f"(p50 by LoadGen {res['percentiles_ms'].get('p50', float('nan')):.4f} ms, p90 "
                f"{res['percentiles_ms'].get('p90', float('nan')):.4f} ms, {res['result_validity']}); ratio "
                f"{lg_ms / own_ms:.3f}; LoadGen QPS {res.get('result_qps_with_loadgen_overhead')} with / "
                f"{res.get('result_qps_without_loadgen_overhead')} without its overhead",
                flush=True,
            )
    session.close()
    med = statistics.median(ratios)
    print(
        f"median ratio LoadGen/effbench over {len(ratios)} rounds: {med:.3f} "
        f"(LoadGen adds {100 * (med - 1):+.1f}% to the median on {a.model} / {a.backend}; "
        f"median difference {statistics.median(added):+.1f} us)"
    )


if __name__ == "__main__":
    main()
