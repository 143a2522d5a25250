"""Schema 3 upgrades a real schema-2 PostgreSQL store: the records of tests/data/store-schema2.db written
into PostgreSQL by the schema-2 store itself (main's harness/store.py, read from git history), then
opened with this Store."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from effbench.harness.result import Result
from effbench.harness.store import Store
from tests.harness.test_store_upgrade import SCHEMA2, same_json

SCHEMA2_COMMIT = "9452941633975238c994694ac10d20f23bed7fa8"  # the last commit whose store wrote schema 2


def _schema2_store_module(tmp_path: Path):
    try:
        source = subprocess.run(
            ["git", "show", f"{SCHEMA2_COMMIT}:src/effbench/harness/store.py"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"the schema-2 store's source is not in this checkout's history: {e}")
    assert "SCHEMA_VERSION = 2" in source
    path = tmp_path / "store_v2.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("store_v2", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_v2"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["store_v2"]
    return module


def test_a_schema2_postgresql_store_is_upgraded_and_reads_back_typed(postgres, tmp_path):
    with sqlite3.connect(SCHEMA2) as conn:
        records = [json.loads(blob) for (blob,) in conn.execute("SELECT record FROM results")]
    name = postgres.new_database()
    url = postgres.socket_url(name)
    old = _schema2_store_module(tmp_path).Store(url)
    old.add_many(records)
    assert old.schema_version() == 2
    old.engine.dispose()

    store = Store(url)

    assert store.schema_version() == 3
    with store.engine.connect() as conn:
        indexes = {r[0] for r in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'results'")}
        flags = {r[0] for r in conn.exec_driver_sql("SELECT profiled::text || '/' || record_schema FROM results")}
    assert {"ix_results_cell", "ix_results_config_newest", "ix_results_scenario", "ix_results_precision"} <= indexes
    assert flags == {"false/2"}
    by_id = {r["id"]: r for r in records}
    results = store.results()
    assert len(results) == len(records) and all(isinstance(r, Result) for r in results)
    for r in results:
        assert same_json(r.to_dict(), by_id[r.id])
    assert [r.model for r in store.results(status="failed")] == ["tests.plugins.tiny_models:svd_model"]
    assert store.count(profiled=False) == len(records) and store.count(profiled=True) == 0
