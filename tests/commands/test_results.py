"""`bench results` reads typed results (Store.results) and prints, for a store written by this
effbench, exactly what printing the stored JSON records does: the expectation is computed here from
the records as the SQLite file holds them, read with the sqlite3 module, past the Store."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from rich.console import Console

from effbench.console import result_table
from effbench.core.stats import summarize
from effbench.harness.result import RECORD_SCHEMA, Energy, Memory, Parity, Result, Timing
from effbench.harness.stability_score import device_stability
from effbench.harness.store import Store, records_to_dataframe
from tests.conftest import FAST, bench, one_line


def _latency(median: float, spread: float = 0.05) -> object:
    return summarize([median * (1 + spread * ((i % 7) - 3) / 3) for i in range(41)])


def fill_store(db: str) -> None:
    """A few results of every shape the readers meet: ok and failed, a tag, accuracy, a precision
    that ran otherwise, a placement summary, energy unavailable, a profiled cell, NaN figures, and a
    history of one cell on a board (for `bench devices stability`)."""
    store = Store(db)
    day = iter(range(1, 28))

    def at() -> str:
        return f"2026-11-{next(day):02d}T10:00:00+00:00"

    store.add(
        Result(
            model="efficientvit_m5",
            backend="onnxruntime",
            latency=_latency(4.2),
            throughput_per_s=238.1,
            iterations=41,
            timing=Timing(first_inference_ms=12.5, load_s=0.4, export_s=3.1, prepare_s=3.5, measure_s=1.0),
            artifact_bytes=12_345_678,
            artifact_cached=True,
            params=12_400_000,
            macs=522_000_000,
            ideal_ms=1.1,
            roofline_ms=1.4,
            efficiency=0.26,
            parity=Parity(max_abs_err=1e-6, max_rel_err=2e-5, cosine=1.0, top1_agreement=1.0, ok=True),
            memory=Memory(peak_rss_mb=310.5, load_delta_mb=42.0),
            energy=Energy(False, "no energy meter on this device"),
            warnings=("high variation: CV 12% > 10%",),
            threads=2,
            tag="nightly",
            config={"model": "efficientvit_m5", "threads": 2},
            config_hash="a" * 16,
            runtime={"placement": {"summary": "all 212 nodes on CPUExecutionProvider"}},
            env={"cpu_model": "AMD EPYC"},
            samples_ms=(4.1, 4.2, 4.3),
            created_at=at(),
        )
    )
    store.add(
        Result(
            model="mobilenetv3_large_100",
            backend="openvino",
            scenario="throughput",
            batch_size=8,
            precision="bf16",
            precision_ran="fp32",
            latency=_latency(20.0, 0.2),
            throughput_per_s=400.0,
            accuracy={"top1": 74.9, "top1_ci": [73.1, 76.6], "drop": 0.4},
            parity=Parity(max_abs_err=3e-3, cosine=0.999, top1_agreement=0.9, ok=False),
            config_hash="b" * 16,
            created_at=at(),
        )
    )
    store.add(
        Result(
            model="resnet50",
            backend="onnxruntime",
            precision="fp16",
            status="failed",
            error="onnxruntime on CPU does not run fp16",
            tag="nightly",
            config_hash="c" * 16,
            created_at=at(),
        )
    )
    store.add(
        Result(
            model="efficientvit_m0",
            backend="openvino",
            latency=_latency(1.5),
            profiled=True,
            extra={"profile": {"layers": [], "profiled_total_ms": 1.6}},
            config_hash="d" * 16,
            created_at=at(),
        )
    )
    for i in range(4):
        store.add(
            Result(
                model="efficientvit_m0",
                backend="onnxruntime",
                device="board",
                latency=_latency(8.0 * (1 + 0.1 * (i % 2))),
                throughput_per_s=float("nan"),
                memory=Memory(peak_rss_mb=88.0),
                config_hash="e" * 16,
                created_at=at(),
            )
        )


def stored_records(db: str) -> list[dict]:
    """The records as the file holds them, newest first (what `bench results` printed before it read
    typed results)."""
    with sqlite3.connect(db) as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM results ORDER BY created_at DESC")]


def table_text(records: list[dict]) -> str:
    out = io.StringIO()
    Console(file=out, width=220).print(result_table(list(reversed(records)), title=f"{len(records)} stored result(s)"))
    return out.getvalue()


EXPECTED = {
    "json": lambda recs: json.dumps(recs, indent=1, default=str) + "\n",
    "csv": lambda recs: records_to_dataframe(recs).to_csv(index=False),
    "table": table_text,
}


@pytest.fixture(scope="module")
def store_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("results") / "r.db")
    fill_store(db)
    ran = bench(
        "run", "--model", "efficientvit_m0", "--backend", "null", *FAST, "--max-iters", "200", "--in-process",
        "--db", db, "--tag", "real",
    )  # fmt: skip
    assert ran.returncode == 0, ran.output
    return db


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize(
    "args,pick",
    [
        ([], lambda r: True),
        (["--backend", "ort"], lambda r: r["backend"] == "onnxruntime"),  # an alias: the canonical name
        (["--tag", "nightly"], lambda r: r["tag"] == "nightly"),
        (
            ["--device", "board", "--since", "2026-11-06"],
            lambda r: r["device"] == "board" and r["created_at"] >= "2026-11-06",
        ),
        (["--model", "efficientvit_m0"], lambda r: r["model"] == "efficientvit_m0"),
    ],
)
def test_listing_prints_the_stored_records(store_db, cli, fmt, args, pick):
    expected = [r for r in stored_records(store_db) if pick(r)]
    assert expected
    r = cli("results", "--db", store_db, "--format", fmt, *args)
    assert r.returncode == 0, r.output
    assert r.stdout == EXPECTED[fmt](expected)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_limit_keeps_the_newest(store_db, cli, fmt):
    records = stored_records(store_db)
    assert cli("results", "--db", store_db, "--format", fmt, "--limit", "3").stdout == EXPECTED[fmt](records[:3])
    assert cli("results", "--db", store_db, "--format", fmt, "--limit", "0").stdout == EXPECTED[fmt](records)


def test_nothing_matching_is_said_and_exit_0(store_db, cli):
    r = cli("results", "--db", store_db, "--model", "no_such_model")
    assert r.returncode == 0 and "no stored results match" in r.stdout
    assert cli("results", "--db", store_db, "--model", "no_such_model", "--format", "json").stdout == "[]\n"


def test_a_record_of_an_older_schema_is_listed_as_a_current_record(tmp_path, cli):
    """A schema-1 record (an old --out file imported) comes out as the record this effbench writes."""
    db = str(tmp_path / "old.db")
    old = {"id": "a" * 32, "created_at": "2026-01-01T00:00:00+00:00", "model": "m", "backend": "ort"}
    Store(db).import_records([{**old, "scenario": "profile", "load_s": 0.5}])
    [listed] = json.loads(cli("results", "--db", db, "--format", "json").stdout)
    assert listed["schema"] == RECORD_SCHEMA and listed["id"] == old["id"]
    assert (listed["scenario"], listed["profiled"], listed["timing"]["load_s"]) == ("latency", True, 0.5)


def test_devices_stability_scores_the_stored_history(store_db, cli):
    board = [r for r in stored_records(store_db) if r["device"] == "board"]
    every = device_stability(board)
    r = cli("devices", "stability", "board", "--db", store_db)
    assert r.returncode == 0, r.output
    assert f"Stability of board: {every['score']} ({every['rating']}) over {every['runs']} runs" in r.stdout
    later = device_stability([x for x in board if x["created_at"] >= "2026-11-07"], min_runs=2)
    assert 2 <= later["runs"] < every["runs"]
    r = cli("devices", "stability", "board", "--db", store_db, "--since", "2026-11-07", "--min-runs", "2")
    assert f"Stability of board: {later['score']} ({later['rating']}) over {later['runs']} runs" in r.stdout
    one_line(cli("devices", "stability", "phone", "--db", store_db), 2, "(devices with results: board, cpu)")


def test_a_record_that_is_no_result_is_named_in_one_line(tmp_path, cli):
    db = str(tmp_path / "bad.db")
    Store(db).add({"id": "f" * 32, "model": "m", "backend": "ort", "status": "exploded"})
    one_line(cli("results", "--db", db, "--format", "json"), 2, f"result {'f' * 32}", "unknown status 'exploded'")
