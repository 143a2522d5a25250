"""Build the PyTorch module for a ModelSpec (random weights unless --pretrained)."""

from __future__ import annotations

import hashlib
import importlib

from effbench.errors import RunFailed, UsageError
from effbench.models.registry import ModelSpec


def build_torch_model(spec: ModelSpec, pretrained: bool = False, seed: int = 0):
    """Return the model in eval mode. The seed makes random weights (and so the cache key) stable."""
    import torch

    torch.manual_seed(seed)
    if spec.kind == "timm":
        import timm

        try:
            model = timm.create_model(spec.target, pretrained=pretrained)
        except Exception as e:
            if pretrained:
                raise RunFailed(
                    f"cannot load pretrained weights for {spec.target!r}: {str(e).splitlines()[0][:200]} "
                    "(no network? run without --pretrained for random weights)"
                ) from None
            raise RunFailed(f"timm could not build {spec.target!r}: {e}") from None
    elif spec.kind == "factory":
        if pretrained:
            raise UsageError("--pretrained applies to timm models; a factory loads its own weights")
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
    return model.eval()


def weights_hash(model) -> str:
    """Content hash of the parameters and buffers (for the artifact cache key)."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]
