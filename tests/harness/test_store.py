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
    df = store.dataframe()
    assert set(df["status"]) == {"ok", "failed"}


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
