"""Environment: the fingerprint of each device / machine the results came from."""

from __future__ import annotations

import json
from typing import Any

from effbench.reports.common import Section, h, note
from effbench.reports.data import Row

_VERSION_ORDER = [
    "torch",
    "torchvision",
    "timm",
    "onnx",
    "onnxruntime",
    "openvino",
    "tensorrt",
    "coremltools",
    "numpy",
    "effbench",
]


def _gpu_text(env: dict[str, Any]) -> str:
    gpu = env.get("gpu") or env.get("gpus")
    if not gpu:
        return "–"
    items = gpu if isinstance(gpu, list) else [gpu]
    out = []
    for g in items:
        if isinstance(g, dict):
            bits = [str(g.get("name") or g.get("model") or "?")]
            for k in ("driver", "cuda", "memory_gib", "memory_mb", "sm_clock_mhz", "clocks"):
                if g.get(k) not in (None, ""):
                    bits.append(f"{k} {g[k]}")
            out.append(", ".join(bits))
        else:
            out.append(str(g))
    return "; ".join(out)


def _versions(env: dict[str, Any]) -> str:
    v = env.get("versions")
    if not isinstance(v, dict):
        return "–"
    keys = [k for k in _VERSION_ORDER if k in v] + sorted(k for k in v if k not in _VERSION_ORDER)
    return ", ".join(f"{k} {v[k]}" for k in keys if v[k] not in (None, ""))


def environment_section(rows: list[Row]) -> Section:
    how = (
        "One row per distinct device and software fingerprint recorded with the results: compare these before "
        "comparing numbers across rows of the other views."
    )
    groups: dict[str, dict[str, Any]] = {}
    no_env = 0
    for r in rows:
        env = r.rec.env
        if not env:
            no_env += 1  # cells that failed before running record no fingerprint
            continue
        fp = {k: env.get(k) for k in ("hostname", "cpu_model", "os", "python", "machine", "logical_cpus", "memory_gib")}
        fp["device"] = r.device
        fp["gpu"] = _gpu_text(env)
        fp["versions"] = _versions(env)
        key = json.dumps(fp, sort_keys=True, default=str)
        g = groups.setdefault(
            key,
            {
                "fp": fp,
                "env": env,
                "runs": 0,
                "ok": 0,
                "first": r.created_at,
                "last": r.created_at,
                "backends": set(),
                "threads": set(),
            },
        )
        g["runs"] += 1
        g["ok"] += r.ok
        g["backends"].add(r.backend)
        if r.rec.threads is not None:
            g["threads"].add(str(r.rec.threads))
        if r.created_at:
            g["first"] = min(filter(None, [g["first"], r.created_at]))
            g["last"] = max(filter(None, [g["last"], r.created_at]))
    missing = (
        note(f"{no_env} result(s) carry no environment (cells that failed or were skipped before running).")
        if no_env
        else ""
    )
    if not groups:
        return Section("environment", "Environment", how, note("No environment recorded.") + missing, [])
    head = [
        "device",
        "host",
        "CPU",
        "logical CPUs",
        "memory",
        "GPU",
        "OS",
        "Python",
        "libraries",
        "backends",
        "results",
        "from – to (UTC)",
    ]
    body_rows = []
    for g in sorted(groups.values(), key=lambda g: (str(g["fp"]["device"]), str(g["fp"]["hostname"]))):
        fp, env = g["fp"], g["env"]
        flags = env.get("cpu_flags") if isinstance(env.get("cpu_flags"), list) else []
        cpu = h(fp.get("cpu_model") or "–")
        if flags:
            cpu += (
                f"<details><summary>{len(flags)} flags</summary>"
                f'<span class="mono">{h(" ".join(map(str, flags)))}</span></details>'
            )
        mem = f"{fp['memory_gib']} GiB" if fp.get("memory_gib") is not None else "–"
        cells = [
            h(fp["device"]),
            h(fp.get("hostname") or "–"),
            cpu,
            h(fp.get("logical_cpus") or "–"),
            h(mem),
            h(fp["gpu"]),
            h(fp.get("os") or "–"),
            h(fp.get("python") or "–"),
            f'<span class="small">{h(fp["versions"])}</span>',
            h(", ".join(sorted(g["backends"]))),
            f"{g['runs']} ({g['ok']} ok)",
            h(f"{g['first'][:16].replace('T', ' ')} – {g['last'][:16].replace('T', ' ')}"),
        ]
        body_rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    tbl = (
        '<div class="table-wrap"><table class="data env"><thead><tr>'
        + "".join(f"<th>{h(c)}</th>" for c in head)
        + "</tr></thead><tbody>"
        + "".join(body_rows)
        + "</tbody></table></div>"
    )
    return Section("environment", "Environment", how, tbl + missing, [])
