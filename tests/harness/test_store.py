import subprocess
import sys
import textwrap

from effbench.harness.result import Result
from effbench.harness.store import Store

WRITER = textwrap.dedent("""
    import sys
    from effbench.core.stats import summarize
    from effbench.harness.result import Result
    from effbench.harness.store import Store
    store = Store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        store.add(Result(model=f"m{i}", backend=sys.argv[2], samples_ms=(float(i),) * 500,
                         latency=summarize([float(i)])))
""")


def test_two_concurrent_writers_all_arrive(tmp_path):
    db = str(tmp_path / "shared.db")
    Store(db)  # create the schema first, as the first `bench` would
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, db, name, "150"]) for name in ("a", "b")]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    recs = Store(db).records()
    assert len(recs) == 300
    assert {r["backend"] for r in recs} == {"a", "b"}
    assert all(len(r["samples_ms"]) == 500 for r in recs)
    assert len({r["id"] for r in recs}) == 300


def test_filters_and_hashes(tmp_path):
    store = Store(str(tmp_path / "x.db"))
    store.add(Result(model="a", backend="ort", tag="t1", config_hash="h1"))
    store.add(Result(model="b", backend="ov", tag="t2", config_hash="h2", status="failed", error="boom"))
    assert [r["model"] for r in store.records(tag="t1")] == ["a"]
    assert [r["model"] for r in store.records(backend=["ov"])] == ["b"]
    assert store.config_hashes() == {"h1"}
    assert store.config_hashes(status=None) == {"h1", "h2"}
    (failed,) = store.results(status="failed")
    assert isinstance(failed, Result) and (failed.model, failed.error, failed.tag) == ("b", "boom", "t2")
    assert store.count() == 2 and store.count(backend=["ov", "ort"], tag="t1") == 1
    assert store.result(failed.id) == failed and store.result("nope") is None
    assert store.results(limit=1) == store.results()[:1] and len(store.results(limit=0)) == 2
    assert store.distinct("backend") == ["ort", "ov"] and store.distinct("model", status="ok") == ["a"]
    df = store.dataframe()
    assert set(df["status"]) == {"ok", "failed"} and set(df.loc[df["model"] == "b", "error"]) == {"boom"}


def test_records_of_schema_1_read_typed(tmp_path):
    """A schema-1 record (no timing block, a profiled cell stored as scenario "profile"), as an old
    `bench run --out` file or spool line holds it, imports and reads back typed."""
    store = Store(str(tmp_path / "x.db"))
    old = {"id": "a" * 32, "model": "m", "backend": "ort", "scenario": "profile", "load_s": 0.5, "export_s": 2.0}
    assert store.import_records([old]) == (1, 0)
    (r,) = store.results(profiled=True)
    assert (r.scenario, r.profiled, r.timing.load_s, r.timing.export_s) == ("latency", True, 0.5, 2.0)
    assert store.results(profiled=False) == [] and store.latest() == [r]


def test_sqlite_is_in_wal_mode(tmp_path):
    store = Store(str(tmp_path / "w.db"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_unwritable_database_is_a_usage_error(tmp_path):
    import pytest

    from effbench.errors import UsageError

    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot open results database"):
        Store(str(tmp_path / "file" / "sub" / "r.db"))
