"""`bench report` formats, filters and its one-line errors, on the real store from conftest."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import bench
from tests.reports.conftest import XSS_MODEL


def _md_rows(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    header, rows = lines[0], lines[1:]
    assert "parity" in header and "median ms" in header
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in rows]


@pytest.mark.slow
def test_markdown_one_row_per_cell(report_store):
    res = bench("report", "--db", report_store.db, "--format", "md")
    assert res.returncode == 0, res.output
    rows = _md_rows(res.stdout)
    assert len(rows) == len(report_store.cells) == 6
    header = [ln for ln in res.stdout.splitlines() if ln.startswith("| ")][0]
    cols = [c.strip() for c in header.strip("|").split("|")]
    parity, status, median = cols.index("parity"), cols.index("status"), cols.index("median ms")
    for row in rows:
        assert len(row) == len(cols)
        if row[status] == "ok":
            assert row[parity] == "✅ ok" and float(row[median]) > 0
        else:
            assert "fp16" in row[status] and row[parity] == "–" and row[median] == "–"
    names = {row[0] for row in rows}
    assert {"efficientvit_m0", "mobilenetv3_small_050"} <= names
    # the hostile name arrives as text, with no raw tag in the Markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names
    assert XSS_MODEL not in res.stdout


@pytest.mark.slow
def test_markdown_filters_and_backend_alias(report_store):
    res = bench("report", "--db", report_store.db, "--format", "md", "--backend", "ort", "--model", "efficientvit_m0")
    assert res.returncode == 0, res.output
    rows = _md_rows(res.stdout)
    assert rows and all(r[0] == "efficientvit_m0" and r[1] == "onnxruntime" for r in rows)
    assert "filters:" in res.stdout


@pytest.mark.slow
def test_csv_every_result(report_store, tmp_path):
    res = bench("report", "--db", report_store.db, "--format", "csv")
    assert res.returncode == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == len(report_store.records)
    assert {"model", "backend", "latency_median_ms", "top1", "family", "parity_ok"} <= set(rows[0])
    out = tmp_path / "flat.csv"
    res = bench("report", "--db", report_store.db, "--format", "csv", "-o", out)
    assert res.returncode == 0 and out.read_text() == bench("report", "--db", report_store.db, "--format", "csv").stdout


@pytest.mark.slow
def test_reference_backend(report_store, tmp_path):
    out = tmp_path / "r.html"
    res = bench("report", "--db", report_store.db, "-o", out, "--reference-backend", "openvino")
    assert res.returncode == 0, res.output
    assert "Speed-up against openvino" in out.read_text()
    res = bench("report", "--db", report_store.db, "-o", out, "--reference-backend", "tensorrt")
    assert res.returncode == 2
    assert "--reference-backend 'tensorrt' has no results" in res.stderr and "Traceback" not in res.output


def test_empty_store_one_line_exit_1(tmp_path):
    from effbench.harness.store import Store

    db = str(tmp_path / "empty.db")
    Store(db)  # tables, no rows
    res = bench("report", "--db", db, "-o", tmp_path / "x.html")
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: no stored results in") and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output and not (tmp_path / "x.html").exists()


def test_missing_database_is_not_created(tmp_path):
    db = tmp_path / "nowhere" / "results.db"
    res = bench("report", "--db", db)
    assert res.returncode == 2 and "no results database at" in res.stderr  # bad input (README: exit codes)
    assert not db.exists() and not db.parent.exists()


@pytest.mark.slow
def test_filter_matching_nothing(report_store, tmp_path):
    res = bench("report", "--db", report_store.db, "--model", "resnet50", "--tag", "nightly", "-o", tmp_path / "x.html")
    assert res.returncode == 1
    line = res.stderr.strip()
    assert "no stored results match --model resnet50 --tag nightly" in line and len(line.splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


def test_bad_options(tmp_path):
    from effbench.harness.store import Store

    db = str(tmp_path / "r.db")
    Store(db)
    res = bench("report", "--db", db, "--format", "pdf")
    assert res.returncode == 2 and "unknown --format 'pdf'" in res.stderr
    res = bench("report", "--db", db, "--since", "last tuesday")
    assert res.returncode == 2 and "invalid --since" in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.slow
def test_since_filter(report_store):
    res = bench("report", "--db", report_store.db, "--format", "md", "--since", "2999-01-01")
    assert res.returncode == 1 and "no stored results match --since 2999-01-01" in res.stderr
    res = bench("report", "--db", report_store.db, "--format", "md", "--since", "2000-01-01")
    assert res.returncode == 0


def test_help_lists_options():
    res = bench("report", "--help")
    assert res.returncode == 0
    for opt in (
        "--out",
        "--format",
        "--db",
        "--model",
        "--backend",
        "--device",
        "--since",
        "--tag",
        "--reference-backend",
    ):
        assert opt in res.stdout


@pytest.mark.slow
def test_default_output_path(report_store, tmp_path):
    res = bench("report", "--db", report_store.db, cwd=tmp_path)
    assert res.returncode == 0, res.output
    assert Path(tmp_path / "reports" / "index.html").stat().st_size > 1_000_000
