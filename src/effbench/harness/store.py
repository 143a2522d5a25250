"""Results store: SQLAlchemy Core over any URL; SQLite (WAL, a bounded wait while busy) by default,
PostgreSQL (postgresql+psycopg://) for a team.

Each row keeps the whole record as JSON plus the columns that are filtered on. A record is written
in one transaction: whole or not at all. Readers get typed records (`results`, `result`, `latest`:
harness.result.Result); `records` hands back the stored JSON as it is, for export. The schema carries
its version (table effbench_schema); a store written by an older version is upgraded on first use,
one written by a newer effbench or by something else is refused with one line. URLs are shown with
their password hidden.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar, Union

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from effbench.errors import EffbenchError, UsageError
from effbench.harness import store_errors
from effbench.harness.result import RECORD_SCHEMA, Result, newest_per_cell
from effbench.harness.urls import redact

DEFAULT_DB = ".effbench/results.db"
SCHEMA_VERSION = 3
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
    Column("scenario", String(20), index=True),
    Column("batch_size", Integer),
    Column("precision", String(10), index=True),
    Column("precision_ran", String(10)),
    Column("status", String(20), index=True),
    Column("tag", String(200), index=True),
    Column("median_ms", Float),
    Column("throughput_per_s", Float),
    Column("top1", Float),
    Column("profiled", Boolean),  # schema 3: a profiled cell's timing is compared only with profiled cells
    Column("record_schema", Integer),  # schema 3: the JSON record's version (Result.to_dict's "schema")
    Column("record", Text, nullable=False),
    # schema 3: readers pick the newest result of a cell (a configuration hash, or the cell's fields)
    Index("ix_results_config_newest", "config_hash", "created_at"),
    Index("ix_results_cell", "model", "backend", "device", "scenario", "batch_size", "precision", "profiled"),
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
_ADDED_IN_V3 = {"profiled": "BOOLEAN", "record_schema": "INTEGER"}
Filter = Union[str, int, bool, Sequence[Union[str, int]], None]
T = TypeVar("T")


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
        if version in (1, 2):
            self._upgrade_from_v2()
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

    def _upgrade_from_v2(self) -> None:
        """Schema 3 adds the profiled and record_schema columns (filled from the records) and indexes on
        scenario, precision, a cell's fields and (config hash, created_at) for the typed readers."""
        cols = {c["name"] for c in inspect(self.engine).get_columns("results")}
        with self.engine.begin() as conn:
            for name, sql_type in _ADDED_IN_V3.items():
                if name not in cols:
                    conn.execute(text(f"ALTER TABLE results ADD COLUMN {name} {sql_type}"))
            for rid, blob in conn.execute(select(results_table.c.id, results_table.c.record)).all():
                rec = json.loads(blob)
                conn.execute(
                    results_table.update()
                    .where(results_table.c.id == rid)
                    .values(profiled=_profiled(rec), record_schema=_record_schema(rec))
                )
            for index in results_table.indexes:
                index.create(conn, checkfirst=True)

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema_table.c.version)).first()
        return int(row[0]) if row else 1

    def _retry(self, fn: Callable[[], T]) -> T:
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
        def write() -> None:
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
        self,
        model: Filter = None,
        backend: Filter = None,
        device: Filter = None,
        tag: Filter = None,
        since: str | None = None,
        status: Filter = None,
        config_hash: Filter = None,
        scenario: Filter = None,
        precision: Filter = None,
        batch_size: Filter = None,
        profiled: bool | None = None,
        limit: int | None = None,
    ) -> Any:
        q = select(results_table.c.record).order_by(results_table.c.created_at.desc())
        if limit:
            q = q.limit(limit)
        for col, val in (
            ("model", model),
            ("backend", backend),
            ("device", device),
            ("tag", tag),
            ("status", status),
            ("config_hash", config_hash),
            ("scenario", scenario),
            ("precision", precision),
            ("batch_size", batch_size),
        ):
            if val is None:
                continue
            c = results_table.c[col]
            q = q.where(c.in_(val) if isinstance(val, (list, tuple, set)) else c == val)
        if profiled is not None:
            c = results_table.c.profiled
            q = q.where(c.is_(True) if profiled else (c.is_(False) | c.is_(None)))
        if since:
            q = q.where(results_table.c.created_at >= str(since))
        return q

    def _read(self, q: Any) -> list[Any]:
        def read() -> list[Any]:
            with self.engine.connect() as conn:
                return [r[0] for r in conn.execute(q)]

        try:
            return self._retry(read)
        except (SQLAlchemyError, OSError) as e:
            raise UsageError(f"cannot read {self.display_url}: {redact(_reason(e))}") from None

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        """The stored JSON records (newest first) as they are, for export; readers use `results`."""
        return [json.loads(blob) for blob in self._read(self._select(**filters))]

    def results(self, **filters: Any) -> list[Result]:
        """Stored results (newest first) matching the filters (a value may be a list): model, backend,
        device, tag, status, config_hash, scenario, precision, batch_size, profiled, since (ISO time);
        limit: the newest N of them (0 or None: all)."""
        return [self._typed(json.loads(blob)) for blob in self._read(self._select(**filters))]

    def count(self, **filters: Any) -> int:
        """How many stored results match the filters."""
        q = select(func.count()).select_from(self._select(**filters).subquery())
        return int(self._retry(lambda: self._scalar(q)))

    def distinct(self, column: str, **filters: Any) -> list[Any]:
        """The distinct values of a filtered column (model, backend, device, tag ...) among the matching
        results, sorted, without None or empty ones."""
        q = self._select(**filters).with_only_columns(results_table.c[column]).order_by(None).distinct()
        return sorted(v for v in self._read(q) if v not in (None, ""))

    def _scalar(self, q: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def result(self, result_id: str) -> Result | None:
        """The result with this id, or None."""
        q = select(results_table.c.record).where(results_table.c.id == result_id)
        found = self._read(q)
        return self._typed(json.loads(found[0])) if found else None

    def latest(self, **filters: Any) -> list[Result]:
        """The newest result of each cell (configuration hash, else the cell's fields), newest first."""
        return newest_per_cell(self.results(**filters))

    def _typed(self, rec: dict[str, Any]) -> Result:
        schema = _record_schema(rec)
        if schema > RECORD_SCHEMA:
            raise UsageError(
                f"{self.display_url} holds results of record schema {schema}; this effbench reads up to "
                f"{RECORD_SCHEMA}: upgrade effbench"
            )
        try:
            return Result.from_dict(rec)
        except (TypeError, ValueError) as e:
            raise UsageError(
                f"result {rec.get('id', '?')} in {self.display_url} cannot be read ({e}): "
                "fix or delete that row of its results table"
            ) from None

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

    def dataframe(self, **filters: Any) -> Any:
        """The matching results as one flat pandas table (`results_frame`)."""
        return results_frame(self.results(**filters))


def _profiled(rec: dict[str, Any]) -> bool:
    return bool(rec.get("profiled")) or rec.get("scenario") == "profile"  # schema-1 records: scenario "profile"


def _record_schema(rec: dict[str, Any]) -> int:
    schema = rec.get("schema")
    return schema if isinstance(schema, int) and not isinstance(schema, bool) else 1


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
        "profiled": _profiled(rec),
        "record_schema": _record_schema(rec),
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
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


_TIMING_COLUMNS = {"first_inference_ms", "load_s", "export_s"}


def flatten(result: Result) -> dict[str, Any]:
    """One result as one flat row of `results_frame` (FLAT_COLUMNS, then latency, parity, memory ...)."""
    r, t = result, result.timing
    row = {k: getattr(t if k in _TIMING_COLUMNS else r, k) for k in FLAT_COLUMNS}
    for k, v in (r.latency_ms or {}).items():
        row[{"n": "latency_samples", "cv": "latency_cv"}.get(k, f"latency_{k}_ms")] = v
    par = r.parity
    row["parity_ok"] = par.ok if par else None
    row["parity_max_abs_err"] = par.max_abs_err if par else None
    row["parity_cosine"] = par.cosine if par else None
    row["parity_top1_agreement"] = par.top1_agreement if par else None
    row["peak_rss_mb"] = r.memory.peak_rss_mb if r.memory else None
    row["energy_j_per_image"] = r.energy.joules_per_image if r.energy else None
    acc = r.accuracy or {}
    row["top1"] = acc.get("top1")
    row["top1_drop"] = acc.get("drop")
    row["prepare_s"] = t.prepare_s
    row["measure_s"] = t.measure_s
    row["warnings"] = "; ".join(r.warnings)
    row["cpu_model"] = r.env.get("cpu_model")
    return row


def results_frame(results: Iterable[Result]) -> Any:
    """Results as one pandas DataFrame, one row per result (the columns of `flatten`)."""
    import pandas as pd

    rows = [flatten(r) for r in results]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=FLAT_COLUMNS)


def records_to_dataframe(records: Iterable[Result | dict[str, Any]]) -> Any:
    """`results_frame` of JSON records (a results file) or results."""
    return results_frame(r if isinstance(r, Result) else Result.from_dict(r) for r in records)


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


__all__ = [
    "DBAPIError",
    "Store",
    "StoreWriteError",
    "newest_per_cell",
    "records_to_dataframe",
    "resolve_url",
    "results_frame",
    "save_or_spool",
]
