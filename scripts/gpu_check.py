"""GPU check steps for scripts/gpu-check.sh: each step runs one effbench cell in its own process
through the real harness (effbench.harness.runner.run_cell) and writes its record as JSON; the
summary step reads them all back and prints the figures.

    python scripts/gpu_check.py env
    python scripts/gpu_check.py cell NAME OUT.json
    python scripts/gpu_check.py summary DIR
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

MODEL = "efficientvit_m5"
FALLBACK = "tiny_models:tiny_cnn"  # tests/plugins, used when timm is missing
SHORT = dict(duration_s=2.0, warmup_s=0.5, warmup_iters=20, min_iters=50)
NO_ENERGY = {"energy": "0"}

# name -> (what it shows, RunConfig fields)
STEPS = {
    "eager_b1": ("torch eager fp32, batch 1", dict(backend="torch", batch_size=1, options=NO_ENERGY)),
    "graph_b1": (
        "torch + CUDA graph fp32, batch 1",
        dict(backend="torch", batch_size=1, cuda_graph=True, options=NO_ENERGY),
    ),
    "fp16_b1": ("torch fp16, batch 1", dict(backend="torch", batch_size=1, precision="fp16", options=NO_ENERGY)),
    "b256_energy": (
        "torch fp32, batch 256 throughput + energy (5 s x 2 windows)",
        dict(
            backend="torch",
            batch_size=256,
            scenario="throughput",
            parity=False,
            energy_window_s=5.0,
            options={"energy_windows": "2", "idle_s": "2"},
        ),
    ),
    "trt_fp16_b1": (
        "tensorrt fp16, batch 1 (needs the tensorrt package)",
        dict(backend="tensorrt", batch_size=1, precision="fp16", options=NO_ENERGY),
    ),
    "ort_cuda_b1": (
        "onnxruntime CUDA provider, batch 1 (needs onnxruntime-gpu)",
        dict(backend="onnxruntime", batch_size=1, options=NO_ENERGY),
    ),
}

PACKAGES = [
    ("torch", True),
    ("numpy", True),
    ("pydantic", True),
    ("typer", True),
    ("rich", True),
    ("yaml", True),
    ("sqlalchemy", True),
    ("pandas", True),
    ("scipy", True),
    ("psutil", True),
    ("pynvml", True),
    ("onnx", True),
    ("timm", False),
    ("onnxruntime", False),
    ("tensorrt", False),
    ("pytest", False),
]


def _have(mod: str) -> bool:
    try:
        importlib.import_module(mod)
        return True
    except Exception:
        return False


def model_name() -> str:
    return MODEL if _have("timm") else FALLBACK


def cmd_env() -> int:
    print(f"python      {sys.version.split()[0]} ({sys.executable})")
    missing_req, missing_opt = [], []
    for mod, required in PACKAGES:
        ok = _have(mod)
        if not ok:
            (missing_req if required else missing_opt).append(mod)
    try:
        import torch

        print(
            f"torch       {torch.__version__} (CUDA build {torch.version.cuda}); "
            f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}"
        )
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            print(f"cuda:0      {p.name}, cc {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB")
    except Exception as e:
        print(f"torch       NOT USABLE: {e}")
    try:
        from effbench.harness.runner import run_cell  # noqa: F401

        print("effbench    importable (harness.runner)")
    except Exception as e:
        print(f"effbench    NOT IMPORTABLE: {type(e).__name__}: {e}")
        missing_req.append(f"effbench ({e})")
    if not _have("timm"):
        print(
            f"NOTE        timm missing: the cells run {FALLBACK} instead of {MODEL}; "
            "their figures are NOT efficientvit_m5 (carry a timm wheel: pip install timm)"
        )
    print("missing required: " + (", ".join(missing_req) if missing_req else "none"))
    print(
        "missing optional: "
        + (", ".join(missing_opt) if missing_opt else "none")
        + "  (tensorrt / onnxruntime-gpu steps report 'unusable' without them)"
    )
    return 1 if missing_req else 0


def cmd_cell(name: str, out: str) -> int:
    what, fields = STEPS[name]
    rec: dict = {"step": name, "what": what, "model": model_name()}
    t0 = time.perf_counter()
    try:
        from effbench.backends.registry import get_backend
        from effbench.harness.config import RunConfig
        from effbench.harness.runner import run_cell

        cfg = RunConfig(model=model_name(), device="cuda:0", **SHORT, **fields)
        reason = get_backend(cfg.backend).unavailable_reason(cfg.device)
        if reason:
            rec.update(status="unusable", error=reason)
        else:
            last = [0.0]

            def event(phase, frac, detail):
                now = time.monotonic()
                if frac in (0.0, 1.0) and now - last[0] > 0.5:
                    last[0] = now
                    print(f"  [{name}] {phase} {detail}", flush=True)

            result = run_cell(cfg, event)
            rec.update(status=result.status, error=result.error, record=result.to_dict())
    except Exception as e:
        rec.update(
            status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0], traceback=traceback.format_exc(limit=-4)
        )
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    rec.get("record", {}).pop("samples_ms", None)
    Path(out).write_text(json.dumps(rec, indent=1, default=str))
    print(f"  [{name}] {rec['status']} in {rec['wall_s']} s" + (f": {rec['error']}" if rec.get("error") else ""))
    return 0 if rec["status"] in ("ok", "unusable") else 1


def _fmt(v, nd=3, unit=""):
    return "-" if v is None else f"{v:.{nd}f}{unit}"


def cmd_summary(directory: str) -> int:
    recs = {}
    for name in STEPS:
        p = Path(directory) / f"{name}.json"
        recs[name] = json.loads(p.read_text()) if p.is_file() else {"status": "no output (crashed or timed out)"}
    print(f"model: {next((r.get('model') for r in recs.values() if r.get('model')), model_name())}")
    print(f"{'step':<13} {'status':<9} {'median ms':>10} {'p90 ms':>9} {'img/s':>10} {'ran':>5} {'parity':>7}  note")
    bad = 0
    for name, r in recs.items():
        rec = r.get("record") or {}
        lat = rec.get("latency_ms") or {}
        parity = rec.get("parity") or {}
        status = r.get("status", "?")
        bad += status not in ("ok", "unusable")
        note = r.get("error") or ""
        hv = (rec.get("runtime") or {}).get("host_vs_device") or {}
        if hv.get("device_over_host") is not None:
            note = (note + f" device/host time {hv['device_over_host']:.2f}").strip()
        if (rec.get("runtime") or {}).get("cuda_graph_captured"):
            note = (note + " graph captured").strip()
        print(
            f"{name:<13} {status:<9} {_fmt(lat.get('median'), 4):>10} {_fmt(lat.get('p90'), 4):>9} "
            f"{_fmt(rec.get('throughput_per_s'), 1):>10} {str(rec.get('precision_ran') or '-'):>5} "
            f"{('ok' if parity.get('ok') else ('FAIL' if parity else '-')):>7}  {note[:110]}"
        )
    e = ((recs.get("b256_energy") or {}).get("record") or {}).get("energy") or {}
    print("\nenergy (torch fp32, batch 256):")
    if not e:
        print("  no energy record")
    elif not e.get("available"):
        print(f"  unavailable: {e.get('reason')}")
    else:
        cc = e.get("cross_check") or {}
        print(f"  method: {e.get('method')}{' (ESTIMATED)' if e.get('estimated') else ''}")
        print(
            f"  counter:    {_fmt(e.get('joules_per_image'), 6)} J/image  windows {e.get('samples_j_per_image')}"
            f"  std {_fmt(e.get('std'), 6)}"
        )
        print(
            f"  integrated: {_fmt(cc.get('joules_per_image'), 6)} J/image  ratio integrated/counter "
            f"{_fmt(cc.get('ratio_to_counter'), 4)} (per window {cc.get('window_ratios')}), "
            f"{_fmt(cc.get('sample_hz'), 1)} Hz"
        )
        print(
            f"  avg power:  {_fmt(e.get('avg_power_w'), 1)} W   idle: {_fmt(e.get('idle_w'), 1)} W "
            f"({(e.get('idle') or {}).get('method')})   dynamic: "
            f"{_fmt((e.get('dynamic') or {}).get('joules_per_image'), 6)} J/image"
        )
        g = e.get("gpu") or {}
        print(f"  throttle reasons seen: {e.get('throttle_reasons_seen')}")
        print(
            f"  gpu: {g.get('name')} uuid {g.get('uuid')} (cuda {g.get('cuda_index')} = nvml {g.get('nvml_index')}), "
            f"driver {g.get('driver_version')}, CUDA driver {g.get('cuda_driver_version')}, "
            f"power limit {g.get('power_limit_w')} W, temp {g.get('temperature_before_c')} -> "
            f"{g.get('temperature_after_c')} C, SM clocks {g.get('sm_clock_mhz_end_of_windows')} MHz"
        )
        for w in e.get("warnings") or []:
            print(f"  warning: {w}")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["env"]:
        return cmd_env()
    if argv[:1] == ["cell"] and len(argv) == 3 and argv[1] in STEPS:
        return cmd_cell(argv[1], argv[2])
    if argv[:1] == ["summary"] and len(argv) == 2:
        return cmd_summary(argv[1])
    if argv[:1] == ["steps"]:
        print(" ".join(STEPS))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
