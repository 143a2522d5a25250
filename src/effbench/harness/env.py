"""The environment a result records: the measuring machine's fingerprint (effbench.core.fingerprint,
taken where the measurement ran) plus what only the harness knows (git commit, GPU, the versions
of every registered backend's packages)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from typing import Any

from effbench.core.fingerprint import cpu_flags, cpu_model, governor, versions  # noqa: F401  (re-exported)


def git_commit(cwd: str | None = None) -> str | None:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or os.getcwd(), capture_output=True, text=True, timeout=5
        )
        if r.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return r.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def _backend_packages() -> tuple[str, ...]:
    from effbench.backends.registry import all_backends

    return tuple(sorted({pkg for b in all_backends().values() for pkg in getattr(b, "packages", ())}))


@lru_cache(maxsize=1)
def _commit() -> str | None:
    return git_commit()


def gpu_fingerprint(device: str) -> dict | None:
    """The CUDA device a cell ran on: name, capability, UUID, driver (None on the CPU)."""
    if not device.startswith("cuda"):
        return None
    from effbench.backends.cuda_util import cuda_index, gpu_identity

    try:
        gpu = gpu_identity(cuda_index(device))
    except Exception as e:  # the cell itself will say why CUDA failed
        return {"error": str(e)}
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpu["driver"] = driver.decode() if isinstance(driver, bytes) else driver
    except Exception:
        gpu["driver"] = None
    return gpu


def harness_environment(measured_env: dict[str, Any], device: str, remote: dict[str, Any] | None = None) -> dict:
    """The record's `env`: where the measurement ran, completed by the harness."""
    from effbench import __version__

    env = dict(measured_env)
    if remote:
        env["remote"] = remote
        env["harness"] = {
            "hostname": socket.gethostname(),
            "python": platform.python_version(),
            "effbench": __version__,
            "git_commit": _commit(),
        }
        return env
    env["versions"] = {**env.get("versions", {}), **versions(_backend_packages())}
    env["git_commit"] = _commit()
    gpu = gpu_fingerprint(device)
    if gpu:
        env["gpu"] = gpu
    return env
