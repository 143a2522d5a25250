"""Turn a ModelSpec into the artifact a backend consumes, through the content-addressed cache.

The cache key of every artifact starts from `ModelSource.key_parts()`, which says which weights a
build would have without building the model where that is safe (see models.loaders.weights_key):
a cached artifact costs a file lookup, not a model build.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

from effbench.backends.base import ArtifactRef, Backend
from effbench.backends.registry import load_ref
from effbench.errors import UsageError
from effbench.export.cache import Artifact, get_or_build, key_of
from effbench.models.registry import ModelSpec


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def package_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """The installed versions of `packages` (None: not installed), for cache keys and records."""
    return {p: _version(p) for p in packages}


class ModelSource:
    """A model to export: its key parts (no build), and the torch module, built once when needed."""

    def __init__(self, spec: ModelSpec, pretrained: bool = False, seed: int = 0):
        self.spec, self.pretrained, self.seed = spec, pretrained, seed

    @lru_cache(maxsize=1)
    def module(self):
        from effbench.models.loaders import build_torch_model

        return build_torch_model(self.spec, self.pretrained, self.seed)

    @lru_cache(maxsize=1)
    def key_parts(self) -> dict[str, Any]:
        from effbench.models.loaders import weights_key

        return {"model": self.spec.id, **weights_key(self.spec, self.seed, self.pretrained)}

    def recipe(self) -> dict[str, Any]:
        return self.spec.recipe(self.seed, self.pretrained)


def base_parts(src: ModelSource, input_shape: tuple[int, ...]) -> dict[str, Any]:
    return {**src.key_parts(), "input_shape": list(input_shape), "python": platform.python_version()}


def require_torch_model(src: ModelSource, runtime: str) -> None:
    """A runtime whose converter starts from the PyTorch module cannot take an ONNX file."""
    if src.spec.kind == "onnx":
        raise UsageError(
            f"{src.spec.id} is an ONNX file: {runtime} converts PyTorch models (give a timm name or a factory, "
            "or use --backend ort / ov for the ONNX file)"
        )


def _params_of(src: ModelSource) -> int:
    from effbench.models.loaders import count_params

    return count_params(src.module())


def onnx_artifact(
    src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript", dynamic: bool = False, **_
) -> Artifact:
    """The ONNX graph for `input_shape`; `dynamic`: batch, height and width left free (traced at that shape)."""
    from effbench.export import onnx_export

    if src.spec.kind == "onnx":
        parts = {**base_parts(src, input_shape), "exporter": "static-copy", "onnx": _version("onnx")}
        return get_or_build(
            "onnx",
            parts,
            "model.onnx",
            lambda t: {"params": onnx_export.static_copy(Path(src.spec.target), t, input_shape[0])},
        )
    parts = {
        **base_parts(src, input_shape),
        "precision": "fp32",
        "exporter": exporter,
        "opset": onnx_export.OPSET,
        "timm": _version("timm"),
        "onnx": _version("onnx"),
        **({"dynamic": "batch,height,width"} if dynamic else {}),
    }

    def build(target: Path) -> dict[str, Any]:
        onnx_export.export_torch_to_onnx(src.module(), input_shape, target, exporter, dynamic)
        return {"params": _params_of(src)}

    return get_or_build("onnx", parts, "model.onnx", build)


def openvino_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript", **_) -> Artifact:
    from effbench.export import openvino_export

    onnx_art = onnx_artifact(src, input_shape, exporter)
    parts = {"onnx": onnx_art.key, "openvino": _version("openvino"), "ir": "from-onnx"}

    def build(target: Path) -> dict[str, Any]:
        openvino_export.onnx_to_ir(onnx_art.file, target)
        return {"params": onnx_art.meta.get("params"), "onnx_path": str(onnx_art.path)}

    art = get_or_build("openvino", parts, "model.xml", build)
    if not onnx_art.cached:  # the IR's export time includes the ONNX step it was made from, when that ran now
        art.export_s += onnx_art.export_s
    art.meta["onnx_path"] = str(onnx_art.path)
    return art


def torch_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", **_) -> Artifact:
    """No file: the recipe the worker builds the module from. Its size and parameters come from the
    ONNX export's record when one exists (so a cached torch cell builds nothing here)."""
    if src.spec.kind == "onnx":
        raise UsageError(f"{src.spec.id} is an ONNX file: the torch backend needs a timm name or a factory")
    key = key_of("torch", base_parts(src, input_shape))
    return Artifact("torch", None, key, True, 0.0, 0, {"recipe": src.recipe()})


def coreml_artifact(
    src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", precision: str = "fp32", **_
) -> Artifact:
    from effbench.export import coreml_export

    return coreml_export.coreml_artifact(src, input_shape, base_parts(src, input_shape), precision)


def tensorrt_artifact(
    src: ModelSource,
    input_shape: tuple[int, ...],
    exporter: str = "torchscript",
    precision: str = "fp32",
    options: dict[str, Any] | None = None,
    device: str = "cuda:0",
    **_,
) -> Artifact:
    """The ONNX artifact, then its engine (built on the GPU it runs on). The engine's export time
    includes the ONNX step when that ran now."""
    from effbench.backends.cuda_util import cuda_index
    from effbench.export import tensorrt_export

    onnx_art = onnx_artifact(src, input_shape, exporter)
    art = tensorrt_export.engine_artifact(onnx_art, precision, options, cuda_index(device), input_shape)
    if not onnx_art.cached:
        art.export_s += onnx_art.export_s
    return art


def none_artifact(src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", **_) -> Artifact:
    return Artifact("none", None, "", False, 0.0, 0, {})


def build_artifact(
    backend: Backend, src: ModelSource, input_shape: tuple[int, ...], exporter: str = "torchscript", **cell
) -> Artifact:
    """The artifact `backend` consumes, made by the exporter it names (Backend.exporter). `cell`
    (precision, options, device) matters to formats compiled for one precision or GPU (TensorRT
    engines, Core ML packages); the others ignore it."""
    try:
        build = load_ref(backend.exporter_ref())
    except (ImportError, AttributeError, ValueError) as e:
        raise UsageError(
            f"backend {backend.name!r}: no exporter {backend.exporter_ref()!r} for its format "
            f"{backend.artifact_format!r} ({e}); name one in the backend's `exporter`"
        ) from None
    return build(src, input_shape, exporter, **cell)


def artifact_ref(art: Artifact) -> ArtifactRef:
    return ArtifactRef(
        art.format,
        str(art.path) if art.path else None,
        art.key,
        {k: v for k, v in art.meta.items() if k != "recipe"},
        art.meta.get("recipe"),
    )
