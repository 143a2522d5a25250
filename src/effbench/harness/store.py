"""Results store: SQLAlchemy Core over any URL; SQLite (WAL, a bounded wait while busy) by default,
PostgreSQL (postgresql+psycopg://) for a team.

Each row keeps the whole record as JSON plus the columns that are filtered on. A record is written
in one transaction: whole or not at all. The schema carries its version (table effbench_schema);
a store written by the previous version is upgraded on first use, one written by a newer effbench
or by something else is refused with one line. URLs are shown with their password hidden.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from effbench.errors import EffbenchError, UsageError
from effbench.harness import store_errors
from effbench.harness.result import Result
from effbench.harness.urls import redact

DEFAULT_DB = ".effbench/results.db"
SCHEMA_VERSION = 2
SQLITE_HEADER = b"SQLite format 3\x00"
SCHEMA_LOCK = 0x6566_6662  # PostgreSQL advisory lock key held while the schema is created ("effb")

metadata = MetaData()
results_table = Table(
    "results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", String(40), index=True),
    Column("config_hash", String(32), index=True),
    Column("model", String(200), index=True),
    Column("backend", String(50), index=True),
    Column("device", String(100), index=True),
    Column("scenario", String(20)),
    Column("batch_size", Integer),
    Column("precision", String(10)),
    Column("precision_ran", String(10)),
    Column("status", String(20), index=True),
    Column("tag", String(200), index=True),
    Column("median_ms", Float),
    Column("throughput_per_s", Float),
    Column("top1", Float),
    Column("record", Text, nullable=False),
)
schema_table = Table(
    "effbench_schema",
    metadata,
    Column("version", Integer, nullable=False),
    Column("written_by", String(40)),
    Column("updated_at", String(40)),
)
_V1_COLUMNS = {
    "id",
    "created_at",
    "config_hash",
    "model",
    "backend",
    "device",
    "scenario",
    "batch_size",
    "precision",
    "status",
    "tag",
    "median_ms",
    "throughput_per_s",
    "record",
}
_ADDED_IN_V2 = {"precision_ran": "VARCHAR(10)", "top1": "FLOAT"}


class StoreWriteError(EffbenchError):
    """A record could not be written (the caller spools it)."""


def resolve_url(db: str | None, must_exist: bool = False) -> str:
    db = db or os.environ.get("EFFBENCH_DB") or DEFAULT_DB
    for plain in ("postgresql://", "postgres://"):  # SQLAlchemy would pick psycopg2; effbench uses psycopg 3
        if db.startswith(plain):
            return "postgresql+psycopg://" + db[len(plain) :]
    if "://" in db:
        return db
    path = Path(db).expanduser()
    if must_exist and not path.is_file():  # a read command on a store that is not there: bad input (exit 2)
        raise UsageError(
            f"no results database at {path}: run `bench run ...` first, or point --db (or EFFBENCH_DB) at one"
        )
    if path.is_dir():
        raise UsageError(f"--db {db} is a directory; pass a database file, e.g. --db {path / 'results.db'}")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
        if head and head != SQLITE_HEADER:
            raise UsageError(f"{path} is not a SQLite database (pass another --db, or move that file away)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"cannot open results database {db!r}: {e.strerror} ({path.parent}); choose another --db path"
        ) from None
    return f"sqlite:///{path.resolve()}"


def _reason(e: BaseException) -> str:
    return store_errors.describe(e, lambda s: s)


class Store:
    def __init__(self, db: str | None = None, must_exist: bool = False):
        self.url = resolve_url(db, must_exist)
        self.display_url = redact(self.url)
        sqlite = self.url.startswith("sqlite")
        try:
            self.engine = create_engine(
                self.url,
                connect_args={"timeout": store_errors.SQLITE_BUSY_TIMEOUT_S} if sqlite else {},
                pool_pre_ping=not sqlite,
            )
        except Exception as e:
            raise UsageError(
                f"cannot open results database {self.display_url}: {redact(_reason(e))} "
                "(check the --db URL; PostgreSQL needs postgresql+psycopg://...)"
            ) from None
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._retry(self._ensure_schema_locked)
        except EffbenchError:
            raise
        except (SQLAlchemyError, OSError) as e:
            raise UsageError(
                f"cannot open results database {self.display_url}: {redact(_reason(e))} "
                + (
                    "(is it a SQLite file? check the path or --db)"
                    if sqlite
                    else "(is the server running and reachable? credentials from PGPASSWORD or ~/.pgpass)"
                )
            ) from None

    # --- schema ---------------------------------------------------------------------------------

    def _ensure_schema_locked(self) -> None:
        """Writers starting together on a fresh PostgreSQL database would race to CREATE TABLE
        (duplicate pg_type rows): one advisory lock around checking and creating the schema."""
        if self.engine.dialect.name != "postgresql":
            self._ensure_schema()
            return
        with self.engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            try:
                self._ensure_schema()
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})

    def _ensure_schema(self) -> None:
        names = set(inspect(self.engine).get_table_names())
        if "results" in names:
            cols = {c["name"] for c in inspect(self.engine).get_columns("results")}
            if not cols >= _V1_COLUMNS:
                raise UsageError(
                    f"{self.display_url} holds a 'results' table that is not effbench's (columns "
                    f"{', '.join(sorted(cols)[:6])} ...): pass another --db"
                )
        version = self.schema_version() if "effbench_schema" in names else (1 if "results" in names else 0)
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{self.display_url} was written by a newer effbench (schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}): upgrade effbench, or pass another --db"
            )
        if version == SCHEMA_VERSION:
            return
        metadata.create_all(self.engine)
        if version == 1:
            self._upgrade_from_v1()
        with self.engine.begin() as conn:
            conn.execute(schema_table.delete())
            conn.execute(
                insert(schema_table).values(
                    version=SCHEMA_VERSION,
                    written_by=_effbench_version(),
                    updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                )
            )

    def _upgrade_from_v1(self) -> None:
        """Schema 1 had no precision_ran and top1 columns: add them and fill them from the records."""
        cols = {c["name"] for c in inspect(self.engine).get_columns("results")}
        with self.engine.begin() as conn:
            for name, sql_type in _ADDED_IN_V2.items():
                if name not in cols:
                    conn.execute(text(f"ALTER TABLE results ADD COLUMN {name} {sql_type}"))
            rows = conn.execute(select(results_table.c.id, results_table.c.record)).all()
            for rid, blob in rows:
                rec = json.loads(blob)
                conn.execute(
                    results_table.update()
                    .where(results_table.c.id == rid)
                    .values(precision_ran=rec.get("precision_ran"), top1=(rec.get("accuracy") or {}).get("top1"))
                )

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema_table.c.version)).first()
        return int(row[0]) if row else 1

    def _retry(self, fn):
        return store_errors.retry_busy(fn, self.display_url or "the results database")

    # --- writing --------------------------------------------------------------------------------

    def add(self, result: Result | dict[str, Any]) -> str:
        rec = result.to_dict() if isinstance(result, Result) else dict(result)
        self._write([_row(rec)])
        return rec["id"]

    def add_many(self, results: Iterable[Result | dict]) -> None:
        """All in one transaction: every record lands, or none does."""
        self._write([_row(r.to_dict() if isinstance(r, Result) else dict(r)) for r in results])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        def write():
            with self.engine.begin() as conn:
                conn.execute(insert(results_table), rows)

        try:
            self._retry(write)
        except (SQLAlchemyError, OSError) as e:
            raise StoreWriteError(f"could not write to {self.display_url}: {redact(_reason(e))}") from None

    def import_records(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        """(added, already there) — importing the same file twice adds nothing the second time."""
        ids = [r["id"] for r in records]
        present: set[str] = set()
        for i in range(0, len(ids), 500):
            with self.engine.connect() as conn:
                q = select(results_table.c.id).where(results_table.c.id.in_(ids[i : i + 500]))
                present |= {row[0] for row in conn.execute(q)}
        added = 0
        for rec in records:
            if rec["id"] not in present:
                self.add(rec)
                present.add(rec["id"])
                added += 1
        return added, len(records) - added

    # --- reading --------------------------------------------------------------------------------

    def _select(
        self, model=None, backend=None, device=None, tag=None, since=None, status=None, config_hash=None, scenario=None
    ):
        q = select(results_table.c.record).order_by(results_table.c.created_at.desc())
        for col, val in (
            ("model", model),
            ("backend", backend),
            ("device", device),
            ("tag", tag),
            ("status", status),
            ("config_hash", config_hash),
            ("scenario", scenario),
        ):
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

        try:
            return self._retry(read)
        except (SQLAlchemyError, OSError) as e:
            raise UsageError(f"cannot read {self.display_url}: {redact(_reason(e))}") from None

    def done_cells(self, retry_failed: bool = False) -> set[tuple[str, str | None]]:
        """(config hash, tag) of the stored cells a resumed sweep skips (ok ones only with retry_failed;
        never a cell the farm lost: it was never measured)."""
        q = select(results_table.c.config_hash, results_table.c.tag).distinct().where(results_table.c.status != "lost")
        if retry_failed:
            q = q.where(results_table.c.status == "ok")
        with self.engine.connect() as conn:
            return {(r[0], r[1]) for r in conn.execute(q) if r[0]}

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


def _row(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as a row of the results table: the columns the store filters on, plus the whole record."""
    lat = rec.get("latency_ms") or {}
    return {
        "id": rec["id"],
        "created_at": rec.get("created_at"),
        "config_hash": rec.get("config_hash"),
        "model": rec.get("model"),
        "backend": rec.get("backend"),
        "device": rec.get("device"),
        "scenario": rec.get("scenario"),
        "batch_size": rec.get("batch_size"),
        "precision": rec.get("precision"),
        "precision_ran": rec.get("precision_ran"),
        "status": rec.get("status"),
        "tag": rec.get("tag"),
        "median_ms": lat.get("median"),
        "throughput_per_s": rec.get("throughput_per_s"),
        "top1": (rec.get("accuracy") or {}).get("top1"),
        "record": json.dumps(rec, default=str, allow_nan=True),
    }


def parse_since(since: str | None) -> str | None:
    """Validate --since (ISO date or time) and return it in the store's created_at form."""
    import datetime as _dt

    if not since:
        return None
    try:
        when = _dt.datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid --since {since!r}: use an ISO date or time, e.g. 2026-11-01 or 2026-11-01T12:00"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="seconds")


def _effbench_version() -> str:
    from effbench import __version__

    return __version__


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except Exception:  # a read-only database cannot switch journals; reads still work
        pass
    cur.execute(f"PRAGMA busy_timeout={int(store_errors.SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


FLAT_COLUMNS = [
    "id",
    "created_at",
    "model",
    "backend",
    "device",
    "scenario",
    "batch_size",
    "precision",
    "precision_ran",
    "status",
    "error",
    "tag",
    "iterations",
    "throughput_per_s",
    "first_inference_ms",
    "load_s",
    "export_s",
    "artifact_bytes",
    "params",
    "macs",
    "ideal_ms",
    "roofline_ms",
    "efficiency",
    "threads",
    "config_hash",
]


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
    acc = rec.get("accuracy") or {}
    row["top1"] = acc.get("top1")
    row["top1_drop"] = acc.get("drop")
    timing = rec.get("timing") or {}
    row["prepare_s"] = timing.get("prepare_s")
    row["measure_s"] = timing.get("measure_s")
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


def save_or_spool(store: Store | None, result: Result) -> tuple[str, Path | None, str | None]:
    """Store the result; when that fails for any reason, spool it. Returns (where: "store" |
    "spool" | "stdout" | "none", the spool file, why the store failed)."""
    from effbench.harness import spool

    if store is None:
        return "none", None, None
    try:
        store.add(result)
        return "store", None, None
    except Exception as e:  # never lose a measured result, whatever the store did
        why = str(e) if isinstance(e, EffbenchError) else f"{type(e).__name__}: {redact(_reason(e))}"
        path = spool.append(result.to_dict())
        return ("spool" if path else "stdout"), path, why


__all__ = ["DBAPIError", "Store", "StoreWriteError", "records_to_dataframe", "resolve_url", "save_or_spool"]
