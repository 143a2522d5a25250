"""YAML as effbench reads it: safe loading, through libyaml's C parser where PyYAML has it (several
times faster than the pure-Python one; the device catalog is parsed on every `bench run`)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)
