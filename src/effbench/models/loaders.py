"""Build the PyTorch module of a ModelSpec (random weights unless --weights or --pretrained), and
the parts of the cache key that say which weights a build would have, without building it."""

from __future__ import annotations

import hashlib
import importlib
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from effbench.errors import RunFailed, UsageError
from effbench.models.registry import ModelSpec

MAX_HASHED_SOURCES = 500  # .py files hashed for a factory's package
# How a random timm model's normalisation layers are set (part of the cache key: a change here must miss it).
# timm zero-initialises some of them (the last BatchNorm of residual branches): a converter then folds those
# branches away and the logits are ~1e-5. Scales are drawn from U(0.5, 1.5) and biases from U(-0.1, 0.1) with
# the run's seed, then BatchNorm statistics are those of the model's own activations on seeded inputs, so
# every branch carries signal and outputs have the scale of a trained model's.
RANDOM_NORMS = "seeded-norms-v1"
NORM_SCALE = (0.5, 1.5)
NORM_BIAS = (-0.1, 0.1)
BN_CALIBRATION_BATCHES = 2


def _dist(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def factory_sources_hash(spec: ModelSpec) -> str | None:
    """sha256 over the factory's module file and the other .py files of its package directory (a
    change to a layer file imported by the factory must miss the cache too); None when the module
    has no file to read."""
    origin = spec.extra.get("module_file")
    if not origin or not Path(origin).is_file():
        return None
    module_file = Path(origin)
    root = (
        module_file.parent
        if module_file.name == "__init__.py" or (module_file.parent / "__init__.py").is_file()
        else None
    )
    files = sorted(root.rglob("*.py"))[:MAX_HASHED_SOURCES] if root is not None else [module_file]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root) if root else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:24]


def weights_key(spec: ModelSpec, seed: int = 0, pretrained: bool = False) -> dict[str, Any]:
    """The part of a cache key that fixes the weights, without building the model where that is safe:
    the ONNX file's content hash; a weights file's hash; a timm name with its timm and torch versions
    and the seed (timm's random initialisation is deterministic given those); a factory's source
    files and the seed. Only --pretrained and a factory with no readable source need the build."""
    if spec.kind == "onnx":
        return {"onnx_sha256": file_sha256(spec.target)}
    parts: dict[str, Any] = {"torch": _dist("torch"), "seed": seed}
    if spec.weights:
        parts["weights_sha256"] = file_sha256(spec.weights)
    if spec.kind == "timm":
        parts.update({"timm": spec.target, "timm_version": _dist("timm")})
        if not pretrained and not spec.weights:
            parts["init"] = RANDOM_NORMS
    else:
        parts["factory"] = spec.target
        parts["sources"] = factory_sources_hash(spec)
    if pretrained or (spec.kind == "factory" and parts["sources"] is None):
        parts["built_weights"] = weights_hash(build_torch_model(spec, pretrained, seed))
    return parts


def build_from_recipe(recipe: dict[str, Any]):
    """The module a ModelSpec.recipe() describes (in a worker: no ModelSpec resolution needed)."""
    if not recipe:
        raise RunFailed("no model to build for the torch backend")
    spec = ModelSpec(
        recipe["id"], recipe["kind"], recipe["target"], tuple(recipe["input_shape"]), weights=recipe.get("weights")
    )
    return build_torch_model(spec, bool(recipe.get("pretrained")), int(recipe.get("seed", 0)))


def build_torch_model(spec: ModelSpec, pretrained: bool = False, seed: int = 0):
    """Return the model in eval mode. The seed makes random weights (and so the cache key) stable."""
    import torch

    torch.manual_seed(seed)
    if spec.kind == "timm":
        import timm

        try:
            model = timm.create_model(spec.target, pretrained=pretrained and not spec.weights)
        except Exception as e:
            if pretrained:
                raise RunFailed(_pretrained_failure(spec.target, e)) from None
            raise RunFailed(f"timm could not build {spec.target!r}: {e}") from None
        if not pretrained and not spec.weights:
            seed_norms(model, seed, spec.input_shape)
    elif spec.kind == "factory":
        if pretrained:
            raise UsageError("--pretrained applies to timm models; a factory loads its own weights (or pass --weights)")
        module, func = spec.target.split(":", 1)
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"cannot load factory {spec.target!r}: {e}") from None
        model = fn()
        if not isinstance(model, torch.nn.Module):
            raise UsageError(f"factory {spec.target!r} returned {type(model).__name__}, expected a torch.nn.Module")
    else:
        raise UsageError(f"{spec.id} is an ONNX file: there is no PyTorch module to build")
    if spec.weights:
        load_weights(model, spec.weights)
    return model.eval()


def norm_layers(model) -> list:
    """The normalisation layers with a learnable scale (BatchNorm, LayerNorm, GroupNorm and timm's own)."""
    import torch

    kinds = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    return [
        m
        for m in model.modules()
        if (isinstance(m, kinds) or "norm" in type(m).__name__.lower())
        and isinstance(getattr(m, "weight", None), torch.nn.Parameter)
    ]


def seed_norms(model, seed: int, input_shape: tuple[int, ...]) -> None:
    """RANDOM_NORMS: non-zero seeded scales and biases, BatchNorm statistics from the model's own
    activations (a model that cannot run in training mode keeps the default statistics)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    norms = norm_layers(model)
    with torch.no_grad():
        for m in norms:
            m.weight.copy_(torch.empty(m.weight.shape).uniform_(*NORM_SCALE, generator=gen))
            if isinstance(getattr(m, "bias", None), torch.nn.Parameter):
                m.bias.copy_(torch.empty(m.bias.shape).uniform_(*NORM_BIAS, generator=gen))
        bns = [m for m in norms if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not bns:
            return
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        model.train()
        try:
            for _ in range(BN_CALIBRATION_BATCHES):
                model(torch.randn(4, *input_shape, generator=gen))
        except Exception:
            for m in bns:
                m.reset_running_stats()
        finally:
            for m, momentum in zip(bns, saved):
                m.momentum = momentum
            model.eval()


def _pretrained_failure(name: str, e: Exception) -> str:
    from effbench.models.hub import hub_cache_dirs

    where = ", ".join(str(d) for d in hub_cache_dirs())
    return (
        f"cannot load pretrained weights for {name!r}: {str(e).splitlines()[0][:160]}; looked in the local hub "
        f"cache ({where}) and the network is not reachable: pass --weights FILE, or run without --pretrained "
        "for random weights"
    )


_LEGACY_TORCH_MAGIC = b"\x80\x02"  # the pickle protocol-2 header of torch.save's pre-1.6 format


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__


def _corrupt(path, detail: str) -> UsageError:
    return UsageError(f"weights file {path} is corrupt ({detail}): save it again or download it again")


def _torch_state(p: Path):
    """torch.load(weights_only=True) of a file first checked to be a whole torch.save file, so that a
    damaged file is called damaged, and a pickle of more than tensors is refused for what it is (never
    with PyTorch's hint to load it with weights_only=False, which would run its code)."""
    import pickle

    import torch

    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise _corrupt(p, f"a damaged zip archive: {e}") from None
        if bad is not None:
            raise _corrupt(p, f"member {bad} fails its checksum")
    else:
        try:
            with open(p, "rb") as f:
                head = f.read(2)
        except OSError as e:
            raise UsageError(f"cannot read weights file {p}: {e.strerror or e}") from None
        if head != _LEGACY_TORCH_MAGIC:
            raise _corrupt(p, "neither a torch.save archive nor a legacy torch file")
    try:
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "WeightsUnpickler error" in ln]
        detail = lines[0] if lines else type(e).__name__
        raise UsageError(
            f"weights file {p} holds more than tensors ({detail[:160]}); effbench loads state_dicts only, never "
            "arbitrary pickles: save the weights alone with torch.save(model.state_dict(), FILE)"
        ) from None
    except Exception as e:
        raise _corrupt(p, f"{type(e).__name__}: {_first_line(e)}") from None


def read_state_dict(path: str) -> dict:
    """A state_dict from a .pth/.pt file (a bare state_dict, or a checkpoint with 'state_dict',
    'model' or 'model_state_dict') or a .safetensors file."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(p))
        except Exception as e:
            raise _corrupt(p, f"not a readable .safetensors file: {_first_line(e)}") from None
    else:
        state = _torch_state(p)
    if isinstance(state, dict):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise UsageError(f"weights file {path} holds no state_dict (a dict of tensor names to tensors)")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def load_weights(model, path: str) -> None:
    state = read_state_dict(path)
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and hasattr(tensor, "shape") and tuple(tensor.shape) != tuple(own[name].shape):
            raise UsageError(
                f"weights file {path} does not fit the model: tensor {name!r} has shape {list(tensor.shape)} "
                f"in the file and {list(own[name].shape)} in the model (weights of another model or size?)"
            )
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        what = []
        if missing:
            what.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            what.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise UsageError(f"weights file {path} does not fit the model: {', '.join(what)} tensor names")


def weights_hash(model) -> str:
    """Content hash of the parameters and buffers."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def modules_loaded() -> dict[str, bool]:
    return {m: m in sys.modules for m in ("torch", "timm")}
