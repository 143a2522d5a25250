"""Device names and the Ray custom resources that stand for them (capacity 1 each)."""

from __future__ import annotations

import re

from effbench.errors import UsageError

PREFIX = "effbench-device-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_device_name(name: str) -> str:
    """A device name is also a resource name and a file name: a short, plain word."""
    if not _NAME.match(name or ""):
        raise UsageError(
            f"bad device name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit), as in devices.yaml"
        )
    return name


def resource_name(device: str) -> str:
    return PREFIX + check_device_name(device)


def device_of(resource: str) -> str | None:
    """'effbench-device-pi5' -> 'pi5'; any other resource -> None."""
    return resource[len(PREFIX) :] if resource.startswith(PREFIX) else None
