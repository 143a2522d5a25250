"""Where pretrained weights are looked for without a network: the Hugging Face hub cache (timm's
source) and torch hub's checkpoints directory."""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache_dirs() -> list[Path]:
    hf = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not hf:
        hf = str(Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub")
    torch_home = os.environ.get("TORCH_HOME") or str(Path.home() / ".cache" / "torch")
    return [Path(hf), Path(torch_home) / "hub" / "checkpoints"]


def offline_env() -> dict[str, str]:
    """Environment that makes the hub libraries use the local cache only (no network attempts)."""
    return {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
