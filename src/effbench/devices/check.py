"""What a device has (OS, architecture, CPU, Python, runtimes and their versions), found through the
same agent that runs remote cells; `bench devices check NAME` (effbench.commands.devices) prints it.

A device with an `ssh:` entry is probed over ssh (the agent is installed in its workdir on the way);
any other entry is probed here, in this process.
"""

from __future__ import annotations

import time
from typing import Any

_RUNTIME_LABELS = {"onnxruntime": "onnxruntime", "openvino": "openvino", "coreml": "coremltools"}


def _is_remote(spec: Any) -> bool:
    if hasattr(spec, "execution") and hasattr(spec, "spec"):  # devices.target.Target
        return spec.execution == "remote"
    if isinstance(spec, dict):
        return bool(spec.get("ssh") or spec.get("host"))
    return getattr(spec, "ssh", None) is not None or type(spec).__name__ == "RemoteTarget"


def check_device(spec: Any, timeout_s: float = 120.0) -> dict:
    """Probe a device; returns the agent's report plus how it was reached. Raises a one-line
    EffbenchError (RemoteError) when the device cannot be reached or the agent cannot run."""
    name = getattr(spec, "name", None) or (spec.get("name") if isinstance(spec, dict) else None) or "device"
    t0 = time.perf_counter()
    if _is_remote(spec):
        from effbench.devices.remote import RemoteTarget, probe_remote

        rt = RemoteTarget.from_spec(spec)
        report = probe_remote(rt, timeout_s)
        report.update(
            {"device": rt.name, "transport": "ssh", "destination": rt.destination, "python_setting": rt.python}
        )
    else:
        from effbench.core.agent import probe

        report = probe(None)
        report.update(
            {
                "device": name,
                "transport": "local",
                "destination": "this machine",
                "python_setting": report["env"].get("python_executable"),
            }
        )
    report["elapsed_s"] = round(time.perf_counter() - t0, 2)
    report["usable_backends"] = [
        b
        for b, info in report.get("runtimes", {}).items()
        if info.get("version")
        and not info.get("error")
        and info.get("usable", True)
        and not report.get("numpy", {}).get("missing")
    ]
    report.pop("event", None)
    return report


def _runtime_line(name: str, info: dict) -> str:
    if info.get("usable") is False and not info.get("version"):
        return f"not usable here: {info.get('why', '?')}"
    if info.get("missing"):
        return f"not installed (pip install {info.get('pip', name)})"
    if info.get("error"):
        return f"installed but broken: {info['error']}"
    text = info.get("version", "?")
    if info.get("providers"):
        text += f"  providers: {', '.join(info['providers'])}"
    if info.get("devices"):
        text += f"  devices: {', '.join(info['devices'])}"
    if info.get("compute_units"):
        text += f"  compute units: {', '.join(info['compute_units'])}"
    if info.get("usable") is False:
        text += f"  (not usable: {info.get('why', '?')})"
    return text


def render_check(report: dict) -> str:
    """Plain text for the terminal (no markup), one fact per line."""
    env = report.get("env", {})
    rows: list[tuple[str, str]] = []
    rows.append(("OS", f"{env.get('os_name') or env.get('os')} ({env.get('os')})"))
    rows.append(("architecture", str(env.get("machine"))))
    if env.get("board"):
        rows.append(("board", env["board"]))
    cpus = env.get("logical_cpus")
    usable = env.get("usable_cpus")
    cpu = f"{env.get('cpu_model')}, {cpus} logical CPUs" + (f" ({usable} usable)" if usable and usable != cpus else "")
    rows.append(("CPU", cpu))
    if env.get("cpu_flags"):
        rows.append(("CPU flags", " ".join(env["cpu_flags"])))
    if env.get("memory_gib"):
        rows.append(("memory", f"{env['memory_gib']} GiB"))
    if env.get("governor"):
        gov = env["governor"]
        rows.append(("governor", gov + ("" if gov == "performance" else "  (for stable numbers: performance)")))
    rows.append(("python", f"{env.get('python')} ({env.get('python_executable')})"))
    np_info = report.get("numpy", {})
    rows.append(
        ("numpy", "not installed (pip install numpy)" if np_info.get("missing") else np_info.get("version", "?"))
    )
    for key, info in report.get("runtimes", {}).items():
        rows.append((_RUNTIME_LABELS.get(key, key), _runtime_line(key, info)))
    if report.get("workdir"):
        free = report.get("disk_free_gib")
        rows.append(("workdir", report["workdir"] + (f"  ({free} GiB free)" if free is not None else "")))
    usable_b = report.get("usable_backends") or []
    rows.append(
        ("backends", ", ".join(usable_b) if usable_b else "none usable (install onnxruntime or openvino, and numpy)")
    )
    width = max(len(k) for k, _ in rows)
    if report.get("transport") == "local":
        head = f"{report.get('device')}: this machine (probed in-process in {report.get('elapsed_s')} s)"
    else:
        head = (
            f"{report.get('device')}: reached {report.get('destination')} over {report.get('transport')} "
            f"in {report.get('elapsed_s')} s"
        )
    return "\n".join([head, *(f"  {k.ljust(width)}  {v}" for k, v in rows)])
