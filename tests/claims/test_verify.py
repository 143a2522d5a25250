"""`bench claims verify` end to end: real cells (null-backend busy-waits with a known ratio, and a real
pair of small timm models on ONNX Runtime), stored tagged, judged, and rendered by the report."""

from __future__ import annotations

import json
import re

import pytest

from effbench.harness.store import Store
from effbench.reports.html import render_html
from effbench.reports.markdown import render_markdown
from tests.claims.cards import null_claim, real_pair_claim, tiny_onnx, write_card
from tests.conftest import bench, interrupt_when

pytestmark = [pytest.mark.slow, pytest.mark.serial]
SHORT = ["--duration", "0.15", "--warmup", "0.05", "--warmup-iters", "2", "--in-process"]


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims-null")
    a, b = tiny_onnx(tmp / "a.onnx"), tiny_onnx(tmp / "b.onnx")
    # A preempted busy-wait ends late: on a loaded machine both sides gain delay, pulling the ratio towards 1.
    # A 20% tolerance keeps the verdicts about the rule (1.5 holds above 1.2, 3.0 fails below 2.4), not the load.
    write_card(
        tmp / "cards",
        [
            null_claim("busy-holds", 1.5, models=(a, a), tolerance=0.2),
            null_claim("busy-does-not-hold", 3.0, models=(a, a), tolerance=0.2),
            null_claim("busy-as-fast", 1.0, 1000, 1000, kind="as_fast", models=(a, b), tolerance=0.2),
        ],
    )
    db, out = tmp / "r.db", tmp / "verdicts.json"
    res = bench(
        "claims",
        "verify",
        "busy-holds",
        "busy-does-not-hold",
        "busy-as-fast",
        "--claims-dir",
        tmp / "cards",
        "--rounds",
        "2",
        *SHORT,
        "--db",
        db,
        "--json",
        out,
        "--fail-on",
        "not-holding",
    )
    return res, {v["claim"]: v for v in json.loads(out.read_text())}, str(db)


def test_null_pair_verdicts(null_run):
    res, verdicts, _ = null_run
    assert res.returncode == 1, res.output  # --fail-on not-holding: the 3.0x claim does not hold
    held, failed, same = verdicts["busy-holds"], verdicts["busy-does-not-hold"], verdicts["busy-as-fast"]
    assert held["verdict"] == "holds", held
    assert held["ci_low"] >= 1.2 and held["ratio"] == pytest.approx(1.5, rel=0.1)
    assert failed["verdict"] == "does not hold" and failed["ci_high"] < 2.4, failed
    assert same["verdict"] == "holds" and 0.8 <= same["ci_low"] <= same["ci_high"] <= 1.2, same
    assert held["backend"] == "null" and held["device"] == "cpu"
    table = " ".join(res.stdout.split())
    assert "does not hold" in table and "holds" in table and "[" in table


def test_results_are_stored_tagged_with_the_claim(null_run):
    _, verdicts, db = null_run
    recs = Store(db).records(tag="claim:busy-holds")
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    sides = sorted(r["extra"]["claim"]["side"] for r in recs)
    assert sides == ["A", "A", "B", "B"]
    assert {r["extra"]["claim"]["run"] for r in recs} == {verdicts["busy-holds"]["run"]}
    by_side = {r["extra"]["claim"]["side"]: r["config"]["options"]["busy_us"] for r in recs}
    assert by_side == {"A": "1000", "B": "1500"}
    ids = verdicts["busy-holds"]["record_ids"]
    assert sorted(ids["A"] + ids["B"]) == sorted(r["id"] for r in recs)


def test_report_claims_section_matches_the_command(null_run):
    _, verdicts, db = null_run
    records = Store(db).records()
    html = render_html(records)
    section = html[html.index('id="claims"') : html.index('id="stability"')]
    for name, v in verdicts.items():
        assert name in section
        assert f"{v['ratio']:.4g}× [{v['ci_low']:.4g}, {v['ci_high']:.4g}]" in section  # same numbers, from the store
    assert "does not hold" in section
    figs = json.loads(re.search(r'id="effbench-figures">(.*?)</script>', html, re.S).group(1))
    traces = figs["fig-claims"]["data"]
    published = next(t for t in traces if t["meta"]["role"] == "published")
    assert sorted(published["x"]) == sorted(v["published"] for v in verdicts.values())
    measured = [x for t in traces if t["meta"]["role"] == "measured" for x in t["x"]]
    assert sorted(measured) == pytest.approx(sorted(v["ratio"] for v in verdicts.values()))
    md = render_markdown(records)
    claims_md = md[md.index("#### Claims") :]
    assert "| busy-does-not-hold | null | cpu | 1 | 3× |" in claims_md and "❌ does not hold" in claims_md
    assert claims_md.count("✅ holds") == 2


def test_real_pair_on_onnxruntime(tmp_path):
    write_card(tmp_path / "cards", [real_pair_claim()])
    db, out = tmp_path / "r.db", tmp_path / "v.json"
    res = bench(
        "claims",
        "verify",
        "small-pair-ort",
        "--claims-dir",
        tmp_path / "cards",
        "--rounds",
        "2",
        "--duration",
        "0.25",
        "--warmup",
        "0.1",
        "--opt",
        "analysis=0",
        "--in-process",
        "--db",
        db,
        "--json",
        out,
    )
    assert res.returncode == 0, res.output
    (v,) = json.loads(out.read_text())
    assert v["backend"] == "onnxruntime" and v["threads"] == 1
    assert v["verdict"] in ("holds", "does not hold", "inconclusive"), v
    assert v["ratio"] > 1 and v["ci_low"] <= v["ratio"] <= v["ci_high"]  # 24 MMACs against 79: A is faster
    recs = Store(str(db)).records(tag="claim:small-pair-ort")
    assert len(recs) == 4 and all(r["status"] == "ok" and r["parity"]["ok"] for r in recs)
    assert {r["model"] for r in recs} == {"mobilenetv3_small_050", "efficientvit_m0"}
    assert all(r["threads"] == 1 and r["samples_ms"] for r in recs)


def test_a_store_that_refuses_spools_the_results_and_names_the_import(tmp_path):
    """A read-only store: every result of the claim is spooled, the command names the spool file and
    `bench results import` and exits 1; the verdict is still judged and written."""
    a = tiny_onnx(tmp_path / "a.onnx")
    write_card(tmp_path / "cards", [null_claim("busy-ro", 1.5, models=(a, a), tolerance=0.2)])
    db, spool, out = tmp_path / "r.db", tmp_path / "spool", tmp_path / "v.json"
    Store(str(db))
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    res = bench("claims", "verify", "busy-ro", "--claims-dir", tmp_path / "cards", "--rounds", "1", *SHORT,
                "--db", ro, "--json", out, env={"EFFBENCH_SPOOL": str(spool)})  # fmt: skip
    assert res.returncode == 1, res.output
    (spooled,) = spool.glob("*.jsonl")
    assert "could not store 2 result(s)" in res.stderr and f"bench results import {spooled}" in res.stderr
    assert "Traceback" not in res.output
    recs = [json.loads(line) for line in spooled.read_text().splitlines()]
    assert sorted(r["extra"]["claim"]["side"] for r in recs) == ["A", "B"]
    (verdict,) = json.loads(out.read_text())
    assert sorted(verdict["record_ids"]["A"] + verdict["record_ids"]["B"]) == sorted(r["id"] for r in recs)
    assert Store(str(db)).records() == []


def test_ctrl_c_keeps_the_finished_cells(tmp_path):
    """A real SIGINT to a running `bench claims verify`: exit 130, and the cells it says it kept are
    the ones the store holds, each whole."""
    import subprocess
    import sys
    from pathlib import Path

    a = tiny_onnx(tmp_path / "a.onnx")
    write_card(tmp_path / "cards", [null_claim("busy-long", 1.5, models=(a, a), tolerance=0.2)])
    db = tmp_path / "r.db"
    args = ["claims", "verify", "busy-long", "--claims-dir", tmp_path / "cards", "--rounds", "40", *SHORT, "--db", db]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "bench"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = interrupt_when(proc, lambda: db.exists() and len(Store(str(db)).records()) >= 2)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    said = re.search(r"interrupted: (\d+) finished cell\(s\) kept", " ".join(out.split()))
    assert said, out + err
    recs = Store(str(db)).records(tag="claim:busy-long")
    assert 2 <= len(recs) == int(said.group(1)) < 80
    assert all(r["status"] == "ok" and r["samples_ms"] and r["extra"]["claim"]["name"] == "busy-long" for r in recs)
