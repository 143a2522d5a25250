"""Where records come from: a results JSON file (`bench run --out`) or the results store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from effbench.errors import UsageError
from effbench.gate.cells import Cell, Invalid, newest_cells, pooled_cells, read_json_file, validate_records
from effbench.harness.result import Result, as_result

DB_FILTERS = ("model", "backend", "device", "tag", "since")


def read_records_file(path: str | Path) -> list[Result]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"results file '{path}' not found (write one with `bench run --out FILE.json`)")
    data = read_json_file(path, "results file")
    try:
        return [as_result(r) for r in validate_records(data)]
    except (Invalid, TypeError, ValueError) as exc:
        raise UsageError(f"results file '{path}' is not valid: {exc}") from exc


def read_db_records(db: str | None, filters: Mapping[str, str | list[str]]) -> list[Result]:
    from effbench.harness.store import Store  # the store pulls in SQLAlchemy: only when asked

    try:
        return Store(db, must_exist=True).results(**filters)
    except UsageError:
        raise
    except Exception as exc:  # a bad URL or an unreadable database is the user's to fix
        raise UsageError(f"cannot read results from {db or 'the default store'}: {exc}") from exc


def parse_db_spec(spec: str) -> dict[str, str] | None:
    """`db` or `db:tag=pr,model=x` -> filters; anything else (a file path) -> None."""
    if spec != "db" and not spec.startswith("db:"):
        return None
    filters: dict[str, str] = {}
    for part in filter(None, spec[3:].split(",")):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DB_FILTERS or not value.strip():
            raise UsageError(
                f"bad store selection '{part}' in '{spec}': write db:NAME=VALUE,... "
                f"with NAME one of {', '.join(DB_FILTERS)}"
            )
        filters[name] = value.strip()
    return filters


def describe(filters: Mapping[str, str | list[str]], db: str | None) -> str:
    where = ",".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}" for k, v in filters.items())
    from effbench.harness.urls import redact

    return f"store {redact(db) if db else '(default)'}" + (f" [{where}]" if where else "")


def load_cells(spec: str, db: str | None = None) -> tuple[list[Cell], str]:
    """Cells for `--current`: a file's records pooled per cell, or the store's newest per cell."""
    filters = parse_db_spec(spec)
    if filters is None:
        cells, source = pooled_cells(read_records_file(spec)), spec
    else:
        cells, source = newest_cells(read_db_records(db, filters)), describe(filters, db)
    if not cells:  # an empty run must not pass the gate as "everything missing"
        raise UsageError(f"no results in {source}")
    return cells, source
