"""`bench site build` over a generated store: data files keyed by configuration hash, pages, change points
against the known steps, the regressions feed, bad input, and `bench site serve`."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.site_scale import RECORD_SCHEMA, record
from effbench.harness.store import Store
from tests.conftest import bench
from tests.site.conftest import RUNS

ATOM = "{http://www.w3.org/2005/Atom}"


def test_data_files_are_keyed_by_configuration_hash(built_site):
    index = json.loads((built_site.path / "data" / "index.json").read_text())
    keys = {c["key"] for c in built_site.store.cells}
    assert {c["key"] for c in index["cells"]} == keys
    for entry in index["cells"]:
        doc = json.loads((built_site.path / entry["file"]).read_text())
        assert doc["key"] == entry["key"] and len(doc["points"]) == entry["runs"] == RUNS
        times = [p["t"] for p in doc["points"]]
        assert times == sorted(times)  # oldest first
        assert (built_site.path / entry["page"]).is_file()


def test_pages_for_overview_devices_models_and_cells(built_site):
    site = built_site.path
    assert (site / "index.html").is_file() and (site / "regressions.html").is_file()
    assert (site / "devices" / "cpu.html").is_file()
    for cell in built_site.store.cells:
        assert (site / "models" / f"{cell['model']}.html").is_file()
        assert (site / "cells" / f"{cell['key']}.html").is_file()
    device = (site / "devices" / "cpu.html").read_text()
    assert "Fingerprint" in device and "generated cpu" in device and "Stability" in device
    # the stability score over the device's history, as `bench devices stability` rates it
    assert re.search(r"\d+/100 \((Excellent|Good|Moderate|Poor)\) over \d+ run", device)
    model = (site / "models" / "efficientvit_m0.html").read_text()
    assert 'id="speed-accuracy"' in model and 'id="precision"' in model and 'id="claims"' in model


def test_no_page_refers_to_the_network(built_site):
    for page in built_site.path.rglob("*.html"):
        refs = re.findall(r'(?:src|href)="([^"]*)"', page.read_text())
        assert refs and not [r for r in refs if "://" in r or r.startswith("//")], page


def test_change_points_match_the_known_steps(built_site):
    index = {c["key"]: c for c in json.loads((built_site.path / "data" / "index.json").read_text())["cells"]}
    for cell in built_site.store.cells:
        doc = json.loads((built_site.path / index[cell["key"]]["file"]).read_text())
        real = [c for c in doc["changes"] if c["real"]]
        if cell["step"] == 1.0:
            assert real == [], (cell["model"], real)
            continue
        assert len(real) == 1, (cell["model"], doc["changes"])
        change = real[0]
        assert change["index"] == int(RUNS * 0.6)
        lo, hi = change["ci"]
        assert lo <= change["ratio"] <= hi and abs(change["ratio"] - cell["step"]) < 0.05
        assert change["verdict"] == ("regression" if cell["step"] > 1 else "improvement")
        # the commits around the change are those of the runs either side
        points = doc["points"]
        assert change["before"]["commit"] == points[change["index"] - 1]["commit"]
        assert change["after"]["commit"] == points[change["index"]]["commit"] != change["before"]["commit"]
        assert "Mann-Whitney" in change["method"]


def test_regressions_json_and_atom_feed(built_site):
    regs = json.loads((built_site.path / "regressions.json").read_text())["regressions"]
    stepped_up = [c for c in built_site.store.cells if c["step"] > 1]
    assert [r["key"] for r in regs] == [c["key"] for c in stepped_up]
    assert regs[0]["ci"][0] > 1.05
    feed = ET.parse(built_site.path / "regressions.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == len(regs)
    summary = entries[0].find(f"{ATOM}summary").text
    assert regs[0]["after"]["commit"][:10] in summary and "95% CI" in summary
    assert entries[0].find(f"{ATOM}link").get("href") == regs[0]["page"]


def test_since_keeps_only_later_runs(site_store, tmp_path):
    res = bench("site", "build", tmp_path / "s", "--db", site_store.db, "--since", "2026-06-08")
    assert res.returncode == 0, res.output
    index = json.loads((tmp_path / "s" / "data" / "index.json").read_text())
    assert all(c["runs"] == RUNS - 14 for c in index["cells"])  # two runs a day from 2026-06-01


def test_empty_store_builds_a_site_that_says_so(tmp_path):
    Store(str(tmp_path / "empty.db"))
    res = bench("site", "build", tmp_path / "site", "--db", tmp_path / "empty.db")
    assert res.returncode == 0, res.output
    assert "no results" in res.output
    assert "No results in" in (tmp_path / "site" / "index.html").read_text()
    res = bench("site", "build", tmp_path / "later", "--db", tmp_path / "empty.db", "--since", "yesterday")
    assert res.returncode == 2 and "--since" in res.output and not (tmp_path / "later").exists()


def test_dir_that_is_a_file_or_not_writable_is_refused(site_store, tmp_path):
    afile = tmp_path / "site.html"
    afile.write_text("x")
    for target in (afile, afile / "sub"):
        res = bench("site", "build", target, "--db", site_store.db)
        assert res.returncode == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert "is a file" in bench("site", "build", afile, "--db", site_store.db).output


def test_newer_store_schema_is_refused_with_its_version(tmp_path):
    db = tmp_path / "new.db"
    Store(str(db))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE effbench_schema SET version = 99")
    res = bench("site", "build", tmp_path / "site", "--db", db)
    assert res.returncode == 2 and "schema 99" in res.output and "Traceback" not in res.output


def test_newer_record_schema_is_refused_with_its_version(site_store, tmp_path):
    import numpy as np

    db = tmp_path / "rec.db"
    rec = record(dict(site_store.cells[0]), 0, RUNS, np.random.default_rng(0))
    rec["schema"] = RECORD_SCHEMA + 1
    Store(str(db)).add(rec)
    res = bench("site", "build", tmp_path / "site", "--db", db)
    assert res.returncode == 2 and f"record schema {RECORD_SCHEMA + 1}" in res.output


def test_serve_listens_on_loopback_only(built_site):
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "bench"), "site", "serve", str(built_site.path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "index.html", timeout=10) as resp:
            assert resp.status == 200 and b"effbench" in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_without_a_site_is_bad_input(tmp_path):
    res = bench("site", "serve", tmp_path)
    assert res.returncode == 2 and "bench site build" in res.output
