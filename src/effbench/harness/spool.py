"""Where a measured result goes when the store cannot take it: a JSON Lines file, imported later
with `bench results import FILE`. A result is never lost: when the spool directory cannot be
written either, the temporary directory is tried, and as a last resort the record is printed."""

from __future__ import annotations

import datetime as _dt
import json
import os
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


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a spool file (JSON Lines) or a `bench run --out` file (a JSON list)."""
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
    text = text.strip()
    if not text:
        return []
    try:
        if text.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise UsageError(f"{path} is not JSON Lines or a JSON list of records: {e}") from None
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict) or "id" not in r or "model" not in r]
    if bad:
        raise UsageError(f"{path}: record {bad[0] + 1} is not an effbench result (no id/model)")
    return records
