"""Schema 3 upgrades a real schema-2 store: tests/data/store-schema2.db was written by effbench at
schema 2 (`bench run` of tests.plugins.tiny_models:tiny_cnn on onnxruntime and on null at batch 1
and 2, and of svd_model, whose export fails: a failed record)."""

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest

from effbench.harness.result import Result
from effbench.harness.store import SCHEMA_VERSION, Store

SCHEMA2 = Path(__file__).parent.parent / "data" / "store-schema2.db"


def _raw(db: Path) -> dict[str, dict]:
    with sqlite3.connect(db) as conn:
        return {rid: json.loads(blob) for rid, blob in conn.execute("SELECT id, record FROM results")}


def same_json(a, b) -> bool:
    """Equal JSON, NaN equal to NaN (parity fields of a cell that did not run are NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture
def schema2(tmp_path) -> Path:
    db = tmp_path / "results.db"
    shutil.copy(SCHEMA2, db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM effbench_schema").fetchall() == [(2,)]
        cols = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
        assert "profiled" not in cols and "record_schema" not in cols
    return db


def test_a_schema2_store_is_upgraded_and_every_record_reads_back_typed_and_equal(schema2):
    before = _raw(schema2)
    assert len(before) == 4 and {r["status"] for r in before.values()} == {"ok", "failed"}

    store = Store(str(schema2))

    assert SCHEMA_VERSION == 3 and store.schema_version() == 3
    with sqlite3.connect(schema2) as conn:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(results)")}
        columns = dict(conn.execute("SELECT id, profiled || '/' || record_schema FROM results").fetchall())
    assert {"ix_results_cell", "ix_results_config_newest", "ix_results_scenario", "ix_results_precision"} <= indexes
    assert set(columns.values()) == {"0/2"}
    assert _raw(schema2) == before  # the records themselves are untouched

    results = store.results()
    assert len(results) == len(before) and all(isinstance(r, Result) for r in results)
    for r in results:
        assert same_json(r.to_dict(), before[r.id])  # typed and back: the very record that was stored
        assert store.result(r.id) == r
    failed = store.results(status="failed")
    assert [r.model for r in failed] == ["tests.plugins.tiny_models:svd_model"]
    assert failed[0].error and "export" in failed[0].error and failed[0].latency is None
    ok = store.results(backend="null", status="ok")
    assert sorted(r.batch_size for r in ok) == [1, 2] and all(r.latency and r.latency.median > 0 for r in ok)


def test_an_upgraded_store_takes_new_results_and_filters_on_the_new_columns(schema2):
    Store(str(schema2))
    store = Store(str(schema2))  # opened again: already schema 3, nothing to do
    assert store.schema_version() == 3
    old = store.results(backend="onnxruntime", status="ok")[0]
    newer = old.with_changes(id="f" * 32, created_at="2099-01-01T00:00:00+00:00", profiled=True)
    store.add(newer)
    assert [r.id for r in store.results(profiled=True)] == [newer.id]
    assert newer.id not in {r.id for r in store.results(profiled=False)}
    assert len(store.results(profiled=False)) == 4
    latest = store.latest(model=old.model, backend="onnxruntime")
    assert [r.id for r in latest] == [newer.id]  # the same configuration hash: only the newest result
    assert store.result("no-such-id") is None


def test_a_record_of_a_newer_record_schema_is_refused_in_one_line(schema2):
    from effbench.errors import UsageError

    store = Store(str(schema2))
    rec = store.results()[0].to_dict() | {"id": "e" * 32, "schema": 99}
    store.add(rec)
    with pytest.raises(UsageError, match="record schema 99; this effbench reads up to 2: upgrade effbench"):
        store.results()
