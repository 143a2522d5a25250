"""Results store: SQLAlchemy Core over any URL; SQLite (WAL, retries on busy) by default.

Each row keeps the whole record as JSON (result, raw samples, environment) plus the columns that
are filtered on. A record is written in one transaction: whole or not at all.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from effbench.errors import UsageError
from effbench.harness.result import Result

DEFAULT_DB = ".effbench/results.db"
SCHEMA_LOCK = 0x6566_6662  # PostgreSQL advisory lock key held while the schema is created ("effb")

metadata = MetaData()
results_table = Table(
    "results", metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", String(40), index=True),
    Column("config_hash", String(32), index=True),
    Column("model", String(200), index=True),
    Column("backend", String(50), index=True),
    Column("device", String(100), index=True),
    Column("scenario", String(20)),
    Column("batch_size", Integer),
    Column("precision", String(10)),
    Column("status", String(20), index=True),
    Column("tag", String(200), index=True),
    Column("median_ms", Float),
    Column("throughput_per_s", Float),
    Column("record", Text, nullable=False),
)


def resolve_url(db: str | None) -> str:
    db = db or os.environ.get("EFFBENCH_DB") or DEFAULT_DB
    for plain in ("postgresql://", "postgres://"):  # SQLAlchemy would pick psycopg2; effbench uses psycopg 3
        if db.startswith(plain):
            return "postgresql+psycopg://" + db[len(plain):]
    if "://" in db:
        return db
    path = Path(db).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot open results database {db!r}: {e.strerror} ({path.parent}); "
                         "choose another --db path") from None
    return f"sqlite:///{path.resolve()}"


def display_url(url: str) -> str:
    """The URL with any password masked: what every message prints."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://..." if "://" in url else url


class Store:
    def __init__(self, db: str | None = None):
        self.url = resolve_url(db)
        try:
            self.engine = create_engine(self.url, connect_args={"timeout": 30} if self.url.startswith("sqlite") else {})
        except Exception as e:
            raise UsageError(f"cannot open results database {self.display_url!r}: {e} (check the --db URL)") from None
        if self.url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._retry(self._create_schema)
        except OperationalError as e:
            first = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
            raise UsageError(f"cannot open results database {self.display_url!r}: {first} (check the path or --db URL; "
                             "PostgreSQL credentials come from PGPASSWORD or ~/.pgpass)") from None

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    def _create_schema(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # writers starting together would otherwise race to CREATE TABLE (duplicate pg_type rows)
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            metadata.create_all(conn)

    def _retry(self, fn, attempts: int = 20):
        for i in range(attempts):
            try:
                return fn()
            except OperationalError as e:
                if "locked" not in str(e).lower() and "busy" not in str(e).lower() or i == attempts - 1:
                    raise
                time.sleep(0.05 * (1.5 ** i) * (0.5 + random.random()))

    def add(self, result: Result | dict[str, Any]) -> str:
        rec = result.to_dict() if isinstance(result, Result) else dict(result)
        lat = rec.get("latency_ms") or {}
        row = {
            "id": rec["id"], "created_at": rec.get("created_at"), "config_hash": rec.get("config_hash"),
            "model": rec.get("model"), "backend": rec.get("backend"), "device": rec.get("device"),
            "scenario": rec.get("scenario"), "batch_size": rec.get("batch_size"),
            "precision": rec.get("precision"), "status": rec.get("status"), "tag": rec.get("tag"),
            "median_ms": lat.get("median"), "throughput_per_s": rec.get("throughput_per_s"),
            "record": json.dumps(rec, default=str, allow_nan=True),
        }

        def write():
            with self.engine.begin() as conn:
                conn.execute(insert(results_table).values(**row))

        self._retry(write)
        return rec["id"]

    def add_many(self, results: Iterable[Result | dict]) -> None:
        for r in results:
            self.add(r)

    def _select(self, model=None, backend=None, device=None, tag=None, since=None, status=None,
                config_hash=None, scenario=None):
        q = select(results_table.c.record).order_by(results_table.c.created_at.desc())
        for col, val in (("model", model), ("backend", backend), ("device", device), ("tag", tag),
                         ("status", status), ("config_hash", config_hash), ("scenario", scenario)):
            if val is None:
                continue
            c = results_table.c[col]
            q = q.where(c.in_(val) if isinstance(val, (list, tuple, set)) else c == val)
        if since:
            q = q.where(results_table.c.created_at >= str(since))
        return q

    def records(self, **filters) -> list[dict[str, Any]]:
        """Stored records (newest first) matching the filters (a value may be a list)."""
        q = self._select(**filters)

        def read():
            with self.engine.connect() as conn:
                return [json.loads(r[0]) for r in conn.execute(q)]

        return self._retry(read)

    def config_hashes(self, status: str | None = "ok", exclude: tuple[str, ...] = ("lost",)) -> set[str]:
        """Hashes stored with `status` (any when None), never counting a status in `exclude`: a
        cell the farm lost was never measured."""
        q = select(results_table.c.config_hash).distinct()
        if status:
            q = q.where(results_table.c.status == status)
        if exclude:
            q = q.where(results_table.c.status.not_in(exclude))
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(q) if r[0]}

    def dataframe(self, **filters):
        return records_to_dataframe(self.records(**filters))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


FLAT_COLUMNS = ["id", "created_at", "model", "backend", "device", "scenario", "batch_size", "precision",
                "precision_ran", "status", "error", "tag", "iterations", "throughput_per_s",
                "first_inference_ms", "load_s", "export_s", "artifact_bytes", "params", "macs", "ideal_ms",
                "roofline_ms", "efficiency", "threads", "config_hash"]


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    row = {k: rec.get(k) for k in FLAT_COLUMNS}
    for k, v in (rec.get("latency_ms") or {}).items():
        name = {"n": "latency_samples", "cv": "latency_cv"}.get(k, f"latency_{k}_ms")
        row[name] = v
    par = rec.get("parity") or {}
    row["parity_ok"] = par.get("ok")
    row["parity_max_abs_err"] = par.get("max_abs_err")
    row["parity_cosine"] = par.get("cosine")
    row["parity_top1_agreement"] = par.get("top1_agreement")
    mem = rec.get("memory") or {}
    row["peak_rss_mb"] = mem.get("peak_rss_mb")
    en = rec.get("energy") or {}
    row["energy_j_per_image"] = en.get("joules_per_image")
    row["warnings"] = "; ".join(rec.get("warnings") or [])
    row["cpu_model"] = (rec.get("env") or {}).get("cpu_model")
    return row


def records_to_dataframe(records: list[dict[str, Any]]):
    import pandas as pd

    rows = [flatten(r) for r in records]
    df = pd.DataFrame(rows)
    if not rows:
        df = pd.DataFrame(columns=FLAT_COLUMNS)
    return df
