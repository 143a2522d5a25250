"""Where claim cards come from, in this order: the cards shipped in the package, packages that
register under the `effbench.claims` entry-point group, EFFBENCH_CLAIMS_DIR, then --claims-dir.

Every card is validated the same way; a bad one is one line naming the file and the key path
(`cards/x.yaml: key 'claims[0].models[1].name': field required`), exit code 2. Two claims may not
share a name, wherever they come from.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydantic import ValidationError

from effbench import yamlfile
from effbench.claims.schema import CardFile, Claim, Paper
from effbench.errors import UsageError

ENTRY_POINT_GROUP = "effbench.claims"
ENV_DIRS = "EFFBENCH_CLAIMS_DIR"
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Entry:
    claim: Claim
    paper: Paper
    origin: str  # the file it was read from (built-in cards: "built-in <file>")

    @property
    def name(self) -> str:
        return self.claim.name


class Library:
    def __init__(self, entries: Iterable[Entry]):
        self.entries: dict[str, Entry] = {}
        for e in entries:
            if e.name in self.entries:
                raise UsageError(
                    f"{e.origin}: claim '{e.name}' is already defined in "
                    f"{self.entries[e.name].origin}: rename one of them"
                )
            self.entries[e.name] = e

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> Entry:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "`bench claims list` shows them"
        raise UsageError(f"unknown claim {name!r}; {hint}")


def _yaml_error(origin: str, e: yaml.YAMLError) -> UsageError:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return UsageError(f"{origin}: not valid YAML{where}: {getattr(e, 'problem', None) or e}")


def parse_card(text: str, origin: str) -> list[Entry]:
    """The claims of one card file's text; `origin` names it in errors."""
    from effbench.harness.sweep import describe_validation_error  # the sweep files' one-line message

    try:
        data = yamlfile.safe_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(origin, e) from None
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: expected a mapping with 'paper' and 'claims' at the top level")
    try:
        card = CardFile(**data)
    except ValidationError as e:
        raise UsageError(describe_validation_error(origin, e)) from None
    _check_backends(card, origin)
    return [Entry(c, card.paper, origin) for c in card.claims]


def _check_backends(card: CardFile, origin: str) -> None:
    from effbench.backends.registry import get_backend

    for i, c in enumerate(card.claims):
        if c.settings.backend is None:
            continue
        try:
            get_backend(c.settings.backend)
        except UsageError as e:
            raise UsageError(f"{origin}: key 'claims[{i}].settings.backend': {e}") from None


def _files(path: Path, what: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"claims directory not found: {path} ({what}); give a folder of claim cards (*.yaml)")
    files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no claim cards (*.yaml) in {path} ({what})")
    return files


def _read(path: Path, origin: str | None = None) -> list[Entry]:
    origin = origin or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read claim card {origin}: {getattr(e, 'strerror', None) or e}") from None
    return parse_card(text, origin)


def builtin_entries() -> list[Entry]:
    root = resources.files("effbench.claims").joinpath("catalog")
    out: list[Entry] = []
    for item in sorted(root.iterdir(), key=lambda p: p.name):
        if item.name.endswith(_SUFFIXES):
            out.extend(parse_card(item.read_text(encoding="utf-8"), f"built-in {item.name}"))
    return out


def _entry_point_paths(ep: Any) -> list[Path]:
    """`pkg.module`: the *.yaml files in that package's folder; `pkg.module:attr`: attr is (or returns)
    a path or a list of paths (files or folders)."""
    import importlib

    module, _, attr = ep.value.partition(":")
    try:
        mod = importlib.import_module(module.strip())
        if not attr:
            return [Path(str(resources.files(mod)))]
        obj = getattr(mod, attr.strip())
        obj = obj() if callable(obj) else obj
    except Exception as e:  # a broken plugin names itself, in one line
        raise UsageError(
            f"entry point '{ep.name} = {ep.value}' ({ENTRY_POINT_GROUP}): {type(e).__name__}: {e}"
        ) from None
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    if not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise UsageError(
            f"entry point '{ep.name} = {ep.value}' ({ENTRY_POINT_GROUP}): expected a path or a "
            f"list of paths, got {type(obj).__name__}"
        )
    return [Path(p) for p in items]


def entry_point_entries() -> list[Entry]:
    from importlib.metadata import entry_points

    out: list[Entry] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        for path in _entry_point_paths(ep):
            for f in _files(path, f"entry point {ep.name}"):
                out.extend(_read(f))
    return out


def env_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p.strip()]


def load_library(dirs: Iterable[str | Path] | None = None) -> Library:
    """Built-in cards, then entry points, then EFFBENCH_CLAIMS_DIR, then `dirs` (--claims-dir)."""
    entries = builtin_entries() + entry_point_entries()
    for path in env_dirs():
        for f in _files(path, ENV_DIRS):
            entries.extend(_read(f))
    for d in dirs or []:
        for f in _files(Path(d).expanduser(), "--claims-dir"):
            entries.extend(_read(f))
    return Library(entries)


def unbuildable_models(claim: Claim) -> list[tuple[str, str]]:
    """(model, why effbench cannot build it) for each model of the claim that it cannot build here:
    the card's own word first, else what `--model` resolution says (unknown timm name, missing module)."""
    from effbench.models.registry import resolve

    out = []
    for m in claim.models:
        if m.unavailable:
            out.append((m.display, m.unavailable))
            continue
        try:
            resolve(m.name, m.resolution or claim.settings.resolution)
        except UsageError as e:
            out.append((m.display, str(e)))
    return out
