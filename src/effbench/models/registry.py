"""Resolve a `--model` string into a ModelSpec.

Accepted forms: a card name (`efficientvit_m5`), `timm:<any timm model>`, a bare timm name, a path to
an `.onnx` file, or `package.module:factory` returning an nn.Module.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

from effbench.errors import UsageError
from effbench.models.cards import CARDS, ModelCard

_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class ModelSpec:
    id: str  # what results are stored under
    kind: str  # "timm" | "onnx" | "factory"
    target: str  # timm name, onnx path, or "module:factory"
    input_shape: tuple[int, int, int]  # C, H, W
    card: ModelCard | None = None
    input_name: str = "input"
    extra: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.card.family if self.card else self.id.split("_")[0]


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _timm_input_shape(name: str) -> tuple[int, int, int]:
    import timm

    cfg = timm.get_pretrained_cfg(name)
    shape = tuple(cfg.input_size) if cfg and cfg.input_size else (3, 224, 224)
    return shape  # type: ignore[return-value]


def _with_size(shape: tuple[int, int, int], input_size: int | None) -> tuple[int, int, int]:
    return (shape[0], input_size, input_size) if input_size else shape


def resolve(text: str, input_size: int | None = None) -> ModelSpec:
    text = (text or "").strip()
    if not text:
        raise UsageError("no model given: pass --model NAME (see `bench models`)")
    if text.startswith("timm:"):
        return _resolve_timm(text[5:], input_size, explicit=True)
    if text.endswith(".onnx") or Path(text).is_file():
        return _resolve_onnx(text, input_size)
    if _FACTORY_RE.match(text):
        return _resolve_factory(text, input_size)
    if text in CARDS:
        card = CARDS[text]
        return ModelSpec(text, "timm", card.timm_name, _with_size(card.input_shape, input_size), card)
    return _resolve_timm(text, input_size, explicit=False)


def _resolve_timm(name: str, input_size: int | None, explicit: bool) -> ModelSpec:
    try:
        import timm
    except ImportError:
        raise UsageError("timm is not installed: pip install timm (or pass an .onnx file)") from None
    if not timm.is_model(name):
        choices = list(CARDS) + _timm_names()
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `bench models` lists the cards"
        raise UsageError(f"unknown model {name!r}{hint}")
    card = CARDS.get(name)
    model_id = f"timm:{name}" if explicit and not card else name
    shape = card.input_shape if card else _timm_input_shape(name)
    return ModelSpec(model_id, "timm", name, _with_size(shape, input_size), card)


def _resolve_onnx(path: str, input_size: int | None) -> ModelSpec:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"ONNX file not found: {path} (check the path)")
    try:
        import onnx

        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # corrupt protobuf
        raise UsageError(f"cannot read ONNX file {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__} (is it a valid .onnx model?)") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
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
    shape = (chw[0], chw[1], chw[2]) if not input_size else (chw[0], input_size, input_size)
    return ModelSpec(p.stem, "onnx", str(p.resolve()), shape, None, inputs[0].name,
                     {"static_batch": dims[0].dim_value or None})


def _resolve_factory(text: str, input_size: int | None) -> ModelSpec:
    module, func = text.split(":", 1)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UsageError(f"cannot import module {module!r} for model {text!r} (is it on PYTHONPATH?)")
    shape = (3, input_size or 224, input_size or 224)
    return ModelSpec(text, "factory", text, shape, None)


def list_cards() -> list[ModelCard]:
    return list(CARDS.values())
