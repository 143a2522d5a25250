"""Turn a ModelSpec into the artifact a backend consumes, through the content-addressed cache."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from effbench.errors import UsageError
from effbench.export.cache import Artifact, get_or_build
from effbench.models.registry import ModelSpec


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


class ModelSource:
    """Lazily builds the torch module once, and its weights hash, for every artifact that needs it."""

    def __init__(self, spec: ModelSpec, pretrained: bool = False, seed: int = 0):
        self.spec, self.pretrained, self.seed = spec, pretrained, seed

    @lru_cache(maxsize=1)
    def module(self):
        from effbench.models.loaders import build_torch_model

        return build_torch_model(self.spec, self.pretrained, self.seed)

    @lru_cache(maxsize=1)
    def weights_hash(self) -> str:
        if self.spec.kind == "onnx":
            import hashlib

            return hashlib.sha256(Path(self.spec.target).read_bytes()).hexdigest()[:20]
        from effbench.models.loaders import weights_hash

        return weights_hash(self.module())


def _base_parts(src: ModelSource, input_shape: tuple[int, ...]) -> dict[str, Any]:
    return {
        "model": src.spec.id,
        "weights": src.weights_hash(),
        "input_shape": list(input_shape),
        "python": platform.python_version(),
    }


def onnx_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript", **_) -> Artifact:
    from effbench.export import onnx_export

    if src.spec.kind == "onnx":
        parts = {**_base_parts(src, input_shape), "exporter": "static-copy", "onnx": _version("onnx")}
        return get_or_build("onnx", parts, "model.onnx",
                            lambda t: onnx_export.static_copy(Path(src.spec.target), t, input_shape[0]))
    parts = {
        **_base_parts(src, input_shape),
        "precision": "fp32",
        "exporter": exporter,
        "opset": onnx_export.OPSET,
        "torch": _version("torch"),
        "timm": _version("timm"),
        "onnx": _version("onnx"),
    }
    return get_or_build("onnx", parts, "model.onnx",
                        lambda t: onnx_export.export_torch_to_onnx(src.module(), input_shape, t, exporter))


def openvino_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript", **_) -> Artifact:
    from effbench.export import openvino_export

    onnx_art = onnx_artifact(src, input_shape, exporter)
    parts = {"onnx": onnx_art.key, "openvino": _version("openvino"), "ir": "from-onnx"}
    art = get_or_build("openvino", parts, "model.xml", lambda t: openvino_export.onnx_to_ir(onnx_art.path, t))
    # the IR's export time includes the ONNX step it was made from, when that ran now
    if not onnx_art.cached:
        art.export_s += onnx_art.export_s
    art.meta["onnx_path"] = str(onnx_art.path)
    return art


def torch_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", **_) -> Artifact:
    if src.spec.kind == "onnx":
        raise UsageError(f"{src.spec.id} is an ONNX file: the torch backend needs a timm name or a factory")
    module = src.module()
    size = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return Artifact("torch", None, src.weights_hash(), True, 0.0, size, {}, module)


BUILDERS: dict[str, Callable[..., Artifact]] = {
    "torch": torch_artifact,
    "onnx": onnx_artifact,
    "openvino": openvino_artifact,
}


def register_builder(fmt: str, builder: Callable[..., Artifact]) -> None:
    """Backends with formats of their own (TensorRT engines, Core ML) add their builder here."""
    BUILDERS[fmt] = builder


def build_artifact(fmt: str, src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript",
                   **cell) -> Artifact:
    """`cell` (precision, options, device) matters to formats compiled for one precision or GPU
    (TensorRT engines, Core ML packages); the others ignore it."""
    if fmt not in BUILDERS:
        raise UsageError(f"no exporter for artifact format {fmt!r}")
    return BUILDERS[fmt](src, input_shape, exporter, **cell)
