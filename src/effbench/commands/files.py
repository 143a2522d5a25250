"""Files a command writes beside the store (reports, verdicts, tables): whole or not at all."""

from __future__ import annotations

from pathlib import Path

from effbench.errors import UsageError


def write_file(path: Path, text: str, what: str = "") -> None:
    """A temporary file next to the target, then a rename; a failure is one line naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise UsageError(f"cannot write {what + ' ' if what else ''}{path}: {e.strerror or e}") from None
