"""`bench ab` with real interleaved runs of the null backend and a fixed busy-wait."""

import json

import pytest

from tests.conftest import bench

pytestmark = pytest.mark.serial  # asserts timings: make test runs it alone

RUN = "--model efficientvit_m0 --backend null --duration 0.4 --warmup 0.05 --no-parity --opt busy_us={}"


def test_ab_flags_a_real_slowdown_and_not_a_copy(tmp_path):
    out = tmp_path / "v.json"
    r = bench("ab", "--a", RUN.format(200), "--b", RUN.format(250), "--rounds", "2", "--json", out)
    assert r.returncode == 1, r.output
    verdict = json.loads(out.read_text())
    cell = verdict["cells"][0]
    assert cell["verdict"] == "regression" and 1.2 < cell["ratio"] < 1.3
    r = bench("ab", "--a", RUN.format(200), "--b", RUN.format(200), "--rounds", "2", "--json", out)
    assert r.returncode == 0, r.output
    assert json.loads(out.read_text())["cells"][0]["verdict"] != "regression"


def test_ab_bad_run_options_are_one_line():
    r = bench("ab", "--a", "--model efficientvit_m0", "--b", "--model efficientvit_m0 --backend null")
    assert r.returncode == 2
    assert "bad run options" in r.stderr and "--backend" in r.stderr and "Traceback" not in r.output


def test_ab_spools_what_the_store_refuses_and_names_the_import(tmp_path):
    """`bench ab --db` stores through the ResultSink: a read-only store spools every round's records,
    the command names the spool file and `bench results import`, and exits 1 (no regression here)."""
    from effbench.harness.store import Store

    db, spool = tmp_path / "r.db", tmp_path / "spool"
    Store(str(db))  # a real store, opened read-only below
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    r = bench("ab", "--a", RUN.format(100), "--b", RUN.format(100), "--rounds", "1", "--db", ro,
              env={"EFFBENCH_SPOOL": str(spool)})  # fmt: skip
    assert r.returncode == 1, r.output
    (spooled,) = spool.glob("*.jsonl")
    assert "could not store 2 result(s)" in r.stderr and f"bench results import {spooled}" in r.stderr
    assert "Traceback" not in r.output
    assert sorted(json.loads(line)["tag"] for line in spooled.read_text().splitlines()) == ["ab:A", "ab:B"]
    assert Store(str(db)).records() == []
