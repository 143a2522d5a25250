"""A user factory's own data configuration (input size, mean, std, crop, interpolation), read the
way timm reads a model's: `pretrained_cfg` / `default_cfg` through `timm.data.resolve_model_data_config`.

It is learnt the first time the factory is built and remembered in the cache under the factory's
key (its name and source files), so a cached cell needs neither the build nor a torch import. The
build that learns it runs in a process of its own, which also checks the factory (imports its module):
a factory or module that crashes or hangs costs this step its answer (the defaults stand), never the
harness; the cell's own isolated build then reports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

from effbench.core.lifeline import child_env
from effbench.errors import UsageError
from effbench.models.loaders import build_torch_model, factory_sources_hash
from effbench.models.registry import ModelSpec, factory_problem
from effbench.paths import cache_root

DATA_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def declared_config(model: Any) -> dict[str, Any]:
    """The data configuration a module declares (timm's convention), resolved by timm; {} when it
    declares none (timm would then answer with its defaults, which are not the model's)."""
    declared = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if not isinstance(declared, dict) or not any(k in declared for k in DATA_KEYS):
        return {}
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k in DATA_KEYS and k in declared}


def _cache_path(spec: ModelSpec, sources: str):
    key = hashlib.sha256(f"{spec.target}\n{sources}".encode()).hexdigest()[:24]
    return cache_root() / "data-config" / f"{key}.json"


_LEARN = (
    "import json, sys\n"
    "from effbench.core.lifeline import die_with_parent\n"
    "die_with_parent()\n"
    "from effbench.models.data_config import learn_here\n"
    "print('DATA-CONFIG=' + json.dumps(learn_here(sys.argv[1], sys.argv[2])))\n"
)


def learn_here(target: str, module_file: str) -> dict[str, Any]:
    """In the learning process: check the factory (its module imported here, not in `bench`), build
    it, read its declared data configuration."""
    problem = factory_problem(target)
    if problem:
        return {"problem": problem}
    spec = ModelSpec(target, "factory", target, (3, 224, 224), extra={"module_file": module_file})
    return {"config": declared_config(build_torch_model(spec))}


def _learn(spec: ModelSpec, timeout_s: float) -> dict[str, Any] | None:
    """The declared configuration read in a process of its own; None when that process failed (a
    crash or a hang is the cell's own build's to report); a factory that cannot be called is exit 2."""
    env = child_env({**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    argv = [sys.executable, "-c", _LEARN, spec.target, str(spec.extra.get("module_file") or "")]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None
    for line in reversed(r.stdout.splitlines()):
        if r.returncode == 0 and line.startswith("DATA-CONFIG="):
            answer = json.loads(line[len("DATA-CONFIG=") :])
            if answer.get("problem"):
                raise UsageError(answer["problem"])
            return dict(answer["config"])
    return None


def factory_data_config(spec: ModelSpec, timeout_s: float = 120.0) -> dict[str, Any] | None:
    """The factory's declared data configuration ({} when it declares none; None when the factory
    could not be built to tell): from the cache when its sources are unchanged, else learnt once."""
    sources = factory_sources_hash(spec)
    path = _cache_path(spec, sources) if sources else None
    if path is not None and path.is_file():
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass  # a damaged entry is learnt again
    cfg = _learn(spec, timeout_s)
    if cfg is None:
        return None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{id(cfg)}.tmp")
            tmp.write_text(json.dumps(cfg, sort_keys=True))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache only costs the next run a build
    return cfg


def with_data_config(spec: ModelSpec, input_size: int | None, timeout_s: float = 120.0) -> ModelSpec:
    """`spec` with a factory's declared input size (unless --input-size was given), its data config in
    extra["data_config"] and where the input size came from in extra["input_source"]."""
    if spec.kind != "factory":
        return spec
    cfg = factory_data_config(spec, timeout_s)
    if cfg is None:
        why = "defaults (the factory could not be built to read its data config)"
        return replace(
            spec, extra={**spec.extra, "data_config": {}, "input_source": input_size and "--input-size" or why}
        )
    source = f"data config of {spec.target}"
    extra = {**spec.extra, "data_config": {**cfg, "source": source} if cfg else {}}
    if input_size:
        return replace(spec, extra={**extra, "input_source": "--input-size"})
    if "input_size" in cfg:
        c, h, w = (int(v) for v in cfg["input_size"])
        return replace(spec, input_shape=(c, h, w), extra={**extra, "input_source": source})
    return replace(spec, extra={**extra, "input_source": "defaults"})


def input_source(spec: ModelSpec, input_size: int | None) -> str:
    """Where the input size a cell runs at came from."""
    if input_size:
        return "--input-size"
    if spec.kind == "timm":
        return f"timm data config of {spec.target}"
    if spec.kind == "onnx":
        return "the ONNX file's input"
    return str(spec.extra.get("input_source", "defaults"))
