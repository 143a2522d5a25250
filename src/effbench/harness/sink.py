"""Where finished results go: --out first, then the store (spooled when the store fails), with
Ctrl-C deferred while a result is written. Every command that stores results uses ResultSink."""

from __future__ import annotations

import json
from pathlib import Path

from effbench.console import console, error_line
from effbench.errors import UsageError


class ResultSink:
    """Finished results: written to --out first, then to the store (spooled when the store fails)."""

    def __init__(self, out: Path | None, store, title: str):
        self.out, self.store, self.title = out, store, title
        self.records: list[dict] = []
        self.spooled: list[tuple[str, Path | None, str]] = []

    def __call__(self, result) -> None:
        from effbench.harness.interrupts import deferred_interrupt
        from effbench.harness.store import save_or_spool

        with deferred_interrupt():
            self.records.append(result.to_dict())
            if self.out is not None:
                write_out(self.out, self.records)
            where, path, why = save_or_spool(self.store, result)
            if where in ("spool", "stdout"):
                self.spooled.append((result.id, path, why or ""))

    def summary(self) -> int:
        """Print what happened to the results; 1 when some could only be spooled."""
        if self.store is not None and len(self.records) > len(self.spooled):
            console.print(
                f"[dim]stored {len(self.records) - len(self.spooled)} result(s) in {self.store.display_url}[/]"
            )
        if not self.spooled:
            return 0
        files = sorted({str(p) for _, p, _ in self.spooled if p})
        why = self.spooled[0][2]
        where = (
            f"saved to {', '.join(files)}; import with `bench results import {files[0]}`"
            if files
            else "printed on standard output (no spool directory was writable)"
        )
        error_line(f"could not store {len(self.spooled)} result(s) ({why}): {where}")
        return 1


def check_out_writable(path: Path | None, flag: str = "--out") -> None:
    """--out (or another file option, `flag`) must be writable before any work starts."""
    if path is None:
        return
    import tempfile

    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; pass a file, e.g. {flag} {path / 'results.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        import os

        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"cannot write {flag} {path}: {e.strerror or e} (choose a writable place)") from None


def write_out(path: Path, records: list[dict]) -> None:
    write_file(path, json.dumps(records, indent=1, default=str), "--out")


def write_file(path: Path, text: str, what: str = "") -> None:
    """A temporary file next to the target, then a rename (whole or not at all); a failure is one
    line naming the file. --out and every report or verdict file a command writes go through here."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise UsageError(f"cannot write {what + ' ' if what else ''}{path}: {e.strerror or e}") from None
