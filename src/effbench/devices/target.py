"""What `--device` names: where a cell executes, and which catalog entry gives its roofs."""

from __future__ import annotations

from dataclasses import dataclass

from effbench.devices.catalog import DeviceSpec, load_catalog, local_device_name, match_device
from effbench.errors import UsageError


@dataclass
class Target:
    name: str  # as the user wrote it; stored as the result's device
    execution: str  # "cpu" | "cuda:N" | "remote"
    spec: DeviceSpec | None  # catalog entry with peaks (None when nothing matches)


def _cuda_name(index: int) -> str | None:
    try:
        import torch

        if torch.cuda.is_available() and index < torch.cuda.device_count():
            return torch.cuda.get_device_name(index)
    except Exception:
        return None
    return None


def resolve_target(device: str, devices_file: str | None = None) -> Target:
    """cpu, cuda, cuda:N, or a devices.yaml name (a GPU entry runs on cuda:0, an ssh entry remotely)."""
    catalog = load_catalog(devices_file)
    if device in ("cpu", "local"):
        return Target(device, "cpu", catalog.get(local_device_name(catalog)))
    if device == "cuda" or device.startswith("cuda:"):
        idx = int(device.split(":")[1]) if ":" in device else 0
        gpu = _cuda_name(idx)
        name = match_device(catalog, gpu) if gpu else None
        return Target(device, f"cuda:{idx}", catalog.get(name) if name else None)
    if device not in catalog:
        from effbench.devices.catalog import get_device

        get_device(device, catalog=catalog)  # raises the one-line error with suggestions
    spec = catalog[device]
    if spec.ssh is not None:
        return Target(device, "remote", spec)
    if spec.kind == "gpu":
        return Target(device, "cuda:0", spec)
    if spec.kind == "cpu":
        # a named CPU entry (say xeon-8480) measured here: its roofs are used as the user asked
        return Target(device, "cpu", spec)
    raise UsageError(
        f"device '{device}' is a {spec.kind}: effbench has no local backend for it "
        "(give it an ssh: entry to run remotely)"
    )
