"""Where a measured result goes when the store cannot take it: a JSON Lines file, imported later
with `bench results import FILE`. A result is never lost: when the spool directory cannot be
written either, the temporary directory is tried, and as a last resort the record is printed."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from effbench.paths import state_dir

_SESSION = _dt.datetime.now().strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"


def spool_dir() -> Path:
    """$EFFBENCH_SPOOL, else <state dir>/spool (see effbench.paths.state_dir)."""
    env = os.environ.get("EFFBENCH_SPOOL")
    return Path(env).expanduser() if env else state_dir() / "spool"


def append(record: dict[str, Any]) -> Path | None:
    """Append the record to this process's spool file; the path, or None when it had to be printed."""
    line = json.dumps(record, default=str) + "\n"
    for folder in (spool_dir(), Path(tempfile.gettempdir()) / "effbench-spool"):
        path = folder / f"unstored-{_SESSION}.jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            return path
        except OSError:
            continue
    sys.stdout.write(line)  # nowhere to write: the record itself, on standard output
    sys.stdout.flush()
    return None


_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _problem(record: Any) -> str | None:
    """Why `record` is not an effbench result (None when it is one)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if "model" not in record or "id" not in record:
        return "not an effbench result (no id/model)"
    if not isinstance(record["id"], str) or not _ID.match(record["id"]):
        return f"id {str(record['id'])[:40]!r} is not a result id (letters, digits, - and _, at most 32)"
    return None


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(the complete records, one line per thing skipped) from a spool file (JSON Lines: each line on
    its own, by its line number) or a `bench run --out` file (a JSON list: by record number). A file
    that cannot be read at all is a UsageError."""
    from effbench.errors import UsageError

    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not JSON Lines or a JSON list of records (it is not even text)") from None
    except OSError as e:
        raise UsageError(
            f"cannot read {path}: {e.strerror or e} (pass a spool .jsonl or an --out .json file)"
        ) from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise UsageError(f"{path} is not a JSON list of records: {e}") from None
        numbered = [(f"record {i}", item) for i, item in enumerate(items, 1)]
    else:
        numbered = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    numbered.append((f"line {n}", json.loads(line)))
                except json.JSONDecodeError as e:
                    numbered.append((f"line {n}", ValueError(f"not complete JSON ({e.msg}; cut short?)")))
    records, skipped = [], []
    for where, item in numbered:
        why = str(item) if isinstance(item, ValueError) else _problem(item)
        if why:
            skipped.append(f"{path}: {where}: {why}")
        else:
            records.append(item)
    if skipped and not records:
        raise UsageError(f"{skipped[0]} (no effbench record in the file: pass a spool .jsonl or an --out .json file)")
    return records, skipped
