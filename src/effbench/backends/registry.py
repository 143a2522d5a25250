"""Backend discovery: the `effbench.backends` entry-point group is the one registration list
(built-ins register there too, in pyproject.toml)."""

from __future__ import annotations

import difflib
import importlib
from functools import cache, lru_cache

from effbench.backends.base import Backend
from effbench.errors import UsageError

GROUP = "effbench.backends"


@lru_cache(maxsize=1)
def _refs() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_ref(ref: str):
    """The object a "module:attribute" reference names (entry points, a backend's exporter/quantiser)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def load_backend(name: str) -> Backend:
    ref = _refs()[name]
    try:
        cls = load_ref(ref)
    except Exception as e:  # a broken plugin must not take the others down
        return _BrokenBackend(name, f"cannot import {ref}: {e}")
    return cls()


def all_backends() -> dict[str, Backend]:
    return {name: load_backend(name) for name in _refs()}


def _alias_index() -> dict[str, str]:
    """Every name and alias -> registered name. Aliases come from the classes, so this loads them
    all; a name that is registered is found without loading the others."""
    index: dict[str, str] = {}
    for name, backend in all_backends().items():
        index[name] = name
        for alias in backend.aliases:
            index.setdefault(alias, name)
    return index


def canonical_name(name: str) -> str:
    """The registered name of a backend name or alias (UsageError with close matches when unknown)."""
    if name in _refs():
        return name
    index = _alias_index()
    if name in index:
        return index[name]
    close = difflib.get_close_matches(name, sorted(index), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(_refs()))}"
    raise UsageError(f"unknown backend {name!r}; {hint} (`bench backends` lists them)")


def get_backend(name: str) -> Backend:
    return load_backend(canonical_name(name))


class _BrokenBackend(Backend):
    artifact_format = "none"

    def __init__(self, name: str, reason: str):
        self.name, self._reason = name, reason  # type: ignore[misc]

    def version(self):
        return None

    def unavailable_reason(self, device="cpu"):
        return self._reason
