"""Resolve a `--model` string into a ModelSpec, without importing torch or timm where the name says
enough (model cards, timm names seen before).

Accepted forms: a card name (`efficientvit_m5`), `timm:<any timm model>`, a bare timm name, a path to
an `.onnx` file, or `package.module:factory` returning an nn.Module.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effbench.errors import UsageError, close_matches
from effbench.models.cards import CARDS, ModelCard
from effbench.models.input_size import check_onnx_size, check_timm_size
from effbench.models.memo import remembered

_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
MAX_INPUT_SIZE = 4096


@dataclass
class ModelSpec:
    id: str  # what results are stored under
    kind: str  # "timm" | "onnx" | "factory"
    target: str  # timm name, onnx path, or "module:factory"
    input_shape: tuple[int, int, int]  # C, H, W
    card: ModelCard | None = None
    input_name: str = "input"
    extra: dict = field(default_factory=dict)
    weights: str | None = None  # a state_dict file (--weights)

    @property
    def family(self) -> str:
        return self.card.family if self.card else self.id.split("_")[0]

    @property
    def static_batch(self) -> int | None:
        """The batch an ONNX file fixes (None: dynamic, or not an ONNX file)."""
        return self.extra.get("static_batch")

    def recipe(self, seed: int = 0, pretrained: bool = False) -> dict[str, Any]:
        """Everything needed to build the torch module again, in another process."""
        return {
            "kind": self.kind,
            "target": self.target,
            "id": self.id,
            "input_shape": list(self.input_shape),
            "seed": seed,
            "pretrained": pretrained,
            "weights": self.weights,
        }


def _timm_index_path(version: str) -> Path:
    from effbench.paths import cache_root

    return cache_root() / "timm-names" / f"timm-{version}.json"


def _timm_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("timm")
    except PackageNotFoundError:
        return None


def timm_input_shape(name: str) -> tuple[int, int, int] | None:
    """The input shape of a timm model, or None when timm has no such model. Answers are remembered
    per timm version in the cache, so a name seen before needs no timm import."""
    version = _timm_version()
    if version is None:
        raise UsageError("timm is not installed: pip install timm (or pass an .onnx file)")

    def lookup() -> list[int] | None:
        import timm

        if not timm.is_model(name):
            return None
        cfg = timm.get_pretrained_cfg(name)
        return list(cfg.input_size) if cfg and cfg.input_size else [3, 224, 224]

    shape = remembered(_timm_index_path(version), name, lookup)
    return (int(shape[0]), int(shape[1]), int(shape[2])) if shape else None


def _with_size(shape: tuple[int, int, int], input_size: int | None) -> tuple[int, int, int]:
    return (shape[0], input_size, input_size) if input_size else shape


def resolve(text: str, input_size: int | None = None, weights: str | None = None) -> ModelSpec:
    text = (text or "").strip()
    if not text:
        raise UsageError("no model given: pass --model NAME (see `bench models`)")
    if input_size is not None and not 8 <= input_size <= MAX_INPUT_SIZE:
        raise UsageError(
            f"invalid --input-size {input_size}: expected 8 to {MAX_INPUT_SIZE} pixels, e.g. --input-size 224"
        )
    if text.startswith("timm:"):
        spec = _resolve_timm(text[5:], input_size, explicit=True)
    elif text.endswith(".onnx") or Path(text).is_file():
        if weights:
            raise UsageError("--weights applies to timm models and factories; an ONNX file carries its own weights")
        return _resolve_onnx(text, input_size)
    elif _FACTORY_RE.match(text):
        spec = _resolve_factory(text, input_size)
    elif text in CARDS:
        card = CARDS[text]
        spec = ModelSpec(text, "timm", card.timm_name, _with_size(card.input_shape, input_size), card)
        if input_size:
            check_timm_size(text, card.timm_name, card.input_shape, input_size, _timm_version() or "none")
    else:
        spec = _resolve_timm(text, input_size, explicit=False)
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UsageError(
                f"weights file not found: {weights} (pass a state_dict saved with torch.save or a .safetensors file)"
            )
        spec.weights = str(path.resolve())
    return spec


def _resolve_timm(name: str, input_size: int | None, explicit: bool) -> ModelSpec:
    card = CARDS.get(name)
    shape = card.input_shape if card else timm_input_shape(name)
    if shape is None:
        import timm

        close = close_matches(name, [*CARDS, *timm.list_models()])  # a card is a timm model too: once
        hint = f"; did you mean {', '.join(close)}?" if close else "; `bench models` lists the cards"
        raise UsageError(f"unknown model {name!r}{hint}")
    model_id = f"timm:{name}" if explicit and not card else name
    if input_size:
        check_timm_size(model_id, name, shape, input_size, _timm_version() or "none")
    return ModelSpec(model_id, "timm", name, _with_size(shape, input_size), card)


def _resolve_onnx(path: str, input_size: int | None) -> ModelSpec:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"ONNX file not found: {path} (check the path)")
    try:
        import onnx

        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # corrupt protobuf
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"cannot read ONNX file {path}: {why} (is it a valid .onnx model?)") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if not inputs:
        what = "is empty (0 bytes)" if p.stat().st_size == 0 else "has no graph inputs"
        raise UsageError(f"ONNX file {path} {what}: re-export the model (an export cut short?)")
    if len(inputs) != 1:
        raise UsageError(f"{path}: expected one image input, found {len(inputs)} ({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise UsageError(f"{path}: input {inputs[0].name!r} has rank {len(dims)}; effbench feeds NCHW images (rank 4)")
    chw = []
    for d in dims[1:]:
        if d.dim_value > 0:
            chw.append(d.dim_value)
        elif input_size:
            chw.append(input_size)
        else:
            raise UsageError(f"{path}: input {inputs[0].name!r} has a dynamic spatial size; pass --input-size N")
    if input_size and dims[2].dim_value > 0 and dims[3].dim_value > 0:
        check_onnx_size(path, (dims[2].dim_value, dims[3].dim_value), input_size)
    shape = (chw[0], chw[1], chw[2]) if not input_size else (chw[0], input_size, input_size)
    return ModelSpec(
        p.stem, "onnx", str(p.resolve()), shape, None, inputs[0].name, {"static_batch": dims[0].dim_value or None}
    )


def _resolve_factory(text: str, input_size: int | None) -> ModelSpec:
    module, func = text.split(":", 1)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UsageError(f"cannot import module {module!r} for model {text!r} (is it on PYTHONPATH?)")
    shape = (3, input_size or 224, input_size or 224)
    return ModelSpec(text, "factory", text, shape, None, extra={"module_file": found.origin})


def check_buildable(spec: ModelSpec) -> None:
    """What can be known wrong about a model before any export: a factory that is not there or not
    callable, an ONNX file the checker refuses (UsageError). A factory is checked by importing its
    module: call this in a process that may crash (models.data_config does, for `bench`)."""
    if spec.kind == "factory":
        problem = factory_problem(spec.target)
        if problem:
            raise UsageError(problem)
    elif spec.kind == "onnx":
        import onnx

        try:
            onnx.checker.check_model(spec.target)
        except Exception as e:
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise UsageError(
                f"ONNX file {spec.target} fails the ONNX checker: {why} (fix or re-export the file)"
            ) from None


def factory_problem(target: str) -> str | None:
    """One line saying why `module:factory` cannot be called, or None when it can."""
    module, func = target.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        return f"cannot import module {module!r} for model {target!r}: {type(e).__name__}: {first}"
    fn = getattr(mod, func, None)
    if fn is None:
        public = sorted(n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n, None)))
        close = difflib.get_close_matches(func, public, n=1, cutoff=0.6)
        hint = f"; did you mean {module}:{close[0]}?" if close else ""
        return f"module {module!r} has no factory {func!r} (model {target!r}){hint}"
    if not callable(fn):
        return f"{target!r} is a {type(fn).__name__}, not a function returning an nn.Module"
    return None


def list_cards() -> list[ModelCard]:
    return list(CARDS.values())
